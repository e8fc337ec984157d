import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { FuseMetrics } from '../../src/mount/fuse-metrics.js';
import { fuseHandlers } from '../../src/mount/fuse-ops.js';
import type { Vfs } from '../../src/mount/vfs.js';

describe('FUSE handlers', () => {
  it('statfs answers EIO when the state directory cannot be asked, never its errno (ENOTCONN would make a live mount look stale)', async () => {
    const dead = (): never => {
      throw Object.assign(new Error('ENOTCONN: socket is not connected, statfs'), { code: 'ENOTCONN' });
    };
    const h = fuseHandlers({} as Vfs, new FuseMetrics(new Registry()), { statfs: dead }, { caller: () => ({ uid: 0, gid: 0 }) });
    await assert.rejects(h.statfs!('/'), (err: { code?: string }) => err.code === 'EIO');
  });
});
