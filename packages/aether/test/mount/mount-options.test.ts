import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isAetherError } from '../../src/errors.js';
import { fuseOptionList, fuseOptionString, type FuseMountOptions } from '../../src/mount/mount-options.js';

function refused(opts: FuseMountOptions, option: string): void {
  assert.throws(() => fuseOptionString(opts), (err) => isAetherError(err, 'MOUNT_OPTION_INVALID') && err.context.option === option);
}

describe('FUSE mount options', () => {
  it('passes nothing by default', () => {
    assert.equal(fuseOptionString({}), '');
  });

  it('spells every supported option the way libfuse 2.9 reads it', () => {
    const list = fuseOptionList({
      fsname: 'aether',
      subtype: 'aether',
      allowOther: true,
      defaultPermissions: true,
      bigWrites: true,
      maxWriteBytes: 131072,
      maxReadBytes: 131072,
      maxReadaheadBytes: 0,
      readaheadKib: 1024, // set through sysfs once mounted, not an -o option
      attrTimeoutSeconds: 60,
      entryTimeoutSeconds: 0.5,
      negativeTimeoutSeconds: 1,
      acAttrTimeoutSeconds: 2,
      hardRemove: true,
      useIno: true,
      kernelCache: true,
      autoCache: true,
      atomicOTrunc: true,
      noforget: true,
      autoInvalData: true,
      noatime: true,
      debug: false,
    });
    assert.deepEqual(list, [
      'allow_other', 'default_permissions', 'big_writes', 'hard_remove', 'use_ino', 'kernel_cache', 'auto_cache', 'atomic_o_trunc', 'noforget', 'aether_auto_inval_data', 'noatime',
      'fsname=aether', 'subtype=aether', 'max_write=131072', 'max_read=131072', 'max_readahead=0',
      'attr_timeout=60', 'entry_timeout=0.5', 'negative_timeout=1', 'ac_attr_timeout=2',
    ]);
    assert.equal(fuseOptionString({ bigWrites: true, maxWriteBytes: 65536 }), '-obig_writes,max_write=65536');
  });

  it('writes tiny timeouts without an exponent', () => {
    assert.deepEqual(fuseOptionList({ attrTimeoutSeconds: 1e-7, entryTimeoutSeconds: 0.0000015 }), ['attr_timeout=0', 'entry_timeout=0.000002']);
  });

  it('refuses values libfuse would reject after mounting, or cap silently', () => {
    refused({ maxWriteBytes: (1 << 20) + 4096 }, 'max_write');
    refused({ readaheadKib: 65537 }, 'readaheadKib');
    refused({ readaheadKib: 1.5 }, 'readaheadKib');
    refused({ maxWriteBytes: 1000 }, 'max_write');
    refused({ maxWriteBytes: 4096.5 }, 'max_write');
    refused({ attrTimeoutSeconds: -1 }, 'attr_timeout');
    refused({ negativeTimeoutSeconds: Number.NaN }, 'negative_timeout');
    refused({ fsname: 'a,b' }, 'fsname');
    refused({ subtype: 'has space' }, 'subtype');
    refused({ fsname: '' }, 'fsname');
  });
});
