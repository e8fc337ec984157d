/**
 * The Vfs and the journal: an operation is answered only once its record is in the OS (or, under
 * `immediate`, durable), so a journal write that fails fails the operation that needed it. The
 * journal is the real one on the in-memory file system its tests use; the cache and the store are
 * stand-ins that accept everything (this is about the journal's answer alone).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Vfs } from '../../src/mount/vfs.js';
import { systemClock } from '../../src/runtime/infra/clock.js';
import { MemoryMeta } from '../../src/tree/meta.js';
import { ROOT_INO } from '../../src/tree/ops.js';
import { collect, immediate, interval, manual, openMemoryJournal, settle } from '../journal/helpers.js';

async function mountedVfs(sync: Parameters<typeof openMemoryJournal>[0], cacheWrite: () => Promise<void> = async () => {}) {
  const { journal, fs } = await openMemoryJournal(sync);
  const view = new MemoryMeta();
  view.putInode({ ino: ROOT_INO, kind: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0, nlink: 2, atimeMs: 0, mtimeMs: 0, ctimeMs: 0 });
  const cache = {
    reserveDirty: () => ({ bytes: 0, release() {} }),
    write: cacheWrite,
    read: async () => ({ data: Buffer.alloc(0), holes: [], token: 0 }),
    putClean: async () => 0,
    truncate: async () => {},
    remove: async () => {},
    onDataLost: () => () => {},
  };
  const logs: string[] = [];
  const vfs = new Vfs({ view, committed: { readInto: () => 0 } as never, journal, cache, gate: { isOpen: true, admit: async () => {} }, clock: systemClock, maxIno: ROOT_INO, log: (l) => logs.push(l) });
  return { vfs, journal, fs, logs };
}

const full = () => {
  throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
};

describe('Vfs: an operation waits for its journal record', () => {
  for (const [name, sync] of [['interval', interval(5, 0)], ['manual', manual()], ['immediate', immediate()]] as const) {
    it(`${name}: a write whose journal write fails fails with the journal's errno, as do later operations and fsync, which change nothing`, async () => {
      const { vfs, journal, fs } = await mountedVfs(sync);
      const fh = await vfs.create('/f', 0o644, 2, 0, 0);
      await vfs.write(fh, 0, Buffer.from('kept'));
      if (name === 'manual') await vfs.fsync();
      fs.hooks.write = full;
      await assert.rejects(vfs.write(fh, 4, Buffer.from('refused')), (err: { errno?: string }) => err.errno === 'ENOSPC');
      fs.hooks.write = undefined;
      await assert.rejects(vfs.write(fh, 4, Buffer.from('later')), (err: { errno?: string }) => err.errno === 'ENOSPC', 'the journal takes nothing more');
      await assert.rejects(vfs.fsync(), (err: { errno?: string }) => err.errno === 'ENOSPC');
      // Nothing refused from now on changes the tree the mount shows.
      const tree = () => JSON.stringify([vfs.readdir('/'), vfs.getattr('/f')]);
      const before = tree();
      const enospc = (err: { errno?: string }) => err.errno === 'ENOSPC';
      await assert.rejects(vfs.mknode('/d', 'dir', 0o40755, 0, 0), enospc);
      await assert.rejects(vfs.setattr('/f', { mode: 0o600 }), enospc);
      await assert.rejects(vfs.rename('/f', '/g'), enospc);
      await assert.rejects(vfs.unlink('/f'), enospc);
      await assert.rejects(vfs.ftruncate(fh, 1), enospc);
      assert.equal(tree(), before);
      await settle();
      await journal.close().catch(() => undefined);
      const after = await openMemoryJournal(sync, { fs: fs.crash() });
      assert.deepEqual((await collect(after.journal)).map((e) => e.seq), [1, 2], 'the create and the first write, nothing answered as written is missing');
      await after.journal.close();
    });
  }
});

describe('Vfs: a commit never overtakes the cache update of the entries it covers', () => {
  it('journal.commit of a write waits until its cache update has run (a crash meanwhile would leave the cache without it)', async () => {
    const held: (() => void)[] = [];
    const { vfs, journal } = await mountedVfs(interval(5, 0), () => new Promise<void>((resolve) => held.push(resolve)));
    const fh = await vfs.create('/f', 0o644, 2, 0, 0);
    await vfs.write(fh, 0, Buffer.from('one'));
    await vfs.write(fh, 3, Buffer.from('two'));
    assert.equal(held.length, 2, 'both writes answered while their cache updates wait');
    await journal.flush();
    const seq = journal.lastSeq;
    let done = false;
    const commit = journal.commit(seq).then(() => (done = true));
    await settle();
    assert.equal(done, false, 'the commit waits');
    assert.equal(journal.committedSeq, 0);
    held[1]!();
    await settle();
    assert.equal(done, false, 'still waits for the first update');
    held[0]!();
    await commit;
    assert.equal(journal.committedSeq, seq);
    await journal.close();
  });
});
