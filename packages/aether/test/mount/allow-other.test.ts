import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { refuseAllowOtherWithoutConf } from '../../src/mount/mountpoint.js';

describe('--allow-other for a user other than root', () => {
  const conf = (text: string | undefined): string => {
    const path = join(mkdtempSync(join(tmpdir(), 'aether-fuseconf-')), 'fuse.conf');
    if (text !== undefined) writeFileSync(path, text);
    return path;
  };
  it('needs user_allow_other in fuse.conf: refused in one line naming the file, before fusermount says only "fuse failed"', () => {
    for (const text of [undefined, '', '#user_allow_other\n', 'mount_max = 1000\n']) {
      const path = conf(text);
      assert.throws(() => refuseAllowOtherWithoutConf(true, path, 1000), (err: Error) => err.message === `--allow-other needs the line user_allow_other in ${path} for a user other than root (fusermount refuses it otherwise); add it as root, or mount without --allow-other`, String(text));
    }
  });
  it('passes with the line, for root, and without --allow-other', () => {
    refuseAllowOtherWithoutConf(true, conf('mount_max = 1000\nuser_allow_other\n'), 1000);
    refuseAllowOtherWithoutConf(true, conf(''), 0);
    refuseAllowOtherWithoutConf(false, conf(''), 1000);
  });
});
