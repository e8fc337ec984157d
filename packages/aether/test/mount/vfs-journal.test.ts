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
import { decodeOp, ROOT_INO } from '../../src/tree/ops.js';
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

describe('Vfs: libfuse hiding an open file (FUSE.md, unlink of an open file)', () => {
  const HIDDEN = '/.fuse_hidden0000000600000001';
  const opsSince = async (journal: Awaited<ReturnType<typeof mountedVfs>>['journal'], seq: number) =>
    (await collect(journal, seq + 1)).map((e) => decodeOp(e.payload)).filter((op) => op.t !== 'forget');

  it('hidden for a rename over it, the file keeps its name until the rename replaces it: one rename is journaled, no unlink', async () => {
    const { vfs, journal } = await mountedVfs(interval(5, 0));
    const held = await vfs.create('/X', 0o644, 2, 0, 0);
    const old = vfs.getattr('/X').ino;
    const fresh = await vfs.create('/X.tmp', 0o644, 2, 0, 0);
    vfs.release(fresh);
    const seq = journal.lastSeq;
    await vfs.rename('/X', HIDDEN, 0, true);
    assert.equal(vfs.getattr('/X').ino, old, 'the name still holds the file between the hide and the rename');
    await vfs.rename('/X.tmp', '/X', 0, true);
    assert.notEqual(vfs.getattr('/X').ino, old);
    assert.equal(vfs.getattr(HIDDEN).nlink, 0, 'the open file lives on under its hidden name');
    const ops = await opsSince(journal, seq);
    assert.deepEqual(ops.map((op) => op.t), ['rename']);
    assert.equal((ops[0] as { dstIno?: number }).dstIno, old, 'the rename replaces the hidden file');
    vfs.release(held);
    await vfs.unlink(HIDDEN);
    assert.deepEqual(vfs.readdir('/').map((e) => e.name).filter((n) => !n.startsWith('.')), ['X']);
    await journal.close();
  });

  it('hidden for a rename that then fails, the file stays where it was (it was unlinked before)', async () => {
    const { vfs, journal } = await mountedVfs(interval(5, 0));
    const held = await vfs.create('/X', 0o644, 2, 0, 0);
    const old = vfs.getattr('/X').ino;
    const seq = journal.lastSeq;
    await vfs.rename('/X', HIDDEN, 0, true);
    await assert.rejects(vfs.rename('/missing', '/X', 0, true), (err: { errno?: string }) => err.errno === 'ENOENT');
    vfs.release(held);
    await vfs.unlink(HIDDEN);
    assert.equal(vfs.getattr('/X').ino, old);
    assert.deepEqual(await opsSince(journal, seq), []);
    await journal.close();
  });

  it('hidden for an unlink, the name goes at once and the unlink is journaled', async () => {
    const { vfs, journal } = await mountedVfs(interval(5, 0));
    const held = await vfs.create('/X', 0o644, 2, 0, 0);
    const seq = journal.lastSeq;
    await vfs.rename('/X', HIDDEN, 0, false);
    assert.throws(() => vfs.getattr('/X'), (err: { errno?: string }) => err.errno === 'ENOENT');
    assert.deepEqual((await opsSince(journal, seq)).map((op) => op.t), ['unlink']);
    vfs.release(held);
    await vfs.unlink(HIDDEN);
    await journal.close();
  });

  it('a rename between two names of one file does nothing and journals nothing, also after a hide', async () => {
    const { vfs, journal } = await mountedVfs(interval(5, 0));
    vfs.release(await vfs.create('/a', 0o644, 2, 0, 0));
    await vfs.link('/a', '/b');
    const held = await vfs.open('/b', 2);
    const seq = journal.lastSeq;
    await vfs.rename('/b', HIDDEN, 0, true);
    await vfs.rename('/a', '/b', 0, true);
    await vfs.rename('/b', '/a');
    assert.deepEqual(vfs.readdir('/').map((e) => e.name).filter((n) => !n.startsWith('.')).sort(), ['a', 'b']);
    assert.equal(vfs.getattr('/a').nlink, 2);
    assert.deepEqual(await opsSince(journal, seq), []);
    vfs.release(held);
    await vfs.unlink(HIDDEN);
    assert.equal(vfs.getattr('/b').nlink, 2);
    await journal.close();
  });
});
