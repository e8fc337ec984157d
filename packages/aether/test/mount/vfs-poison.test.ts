/**
 * When the cache loses data it had acknowledged (a failed write-through or truncation), reads of
 * that file must fail with EIO until the store has every entry the cache lost, never answer with
 * older bytes. The cache is the real FileCache on a temp dir with block-file I/O made to fail;
 * the journal and the store are stand-ins (the store answers every byte as 'O', the old content).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Vfs } from '../../src/mount/vfs.js';
import { FileCache } from '../../src/runtime/cache/cache.js';
import { systemClock } from '../../src/runtime/infra/clock.js';
import { MemoryMeta } from '../../src/tree/meta.js';
import { ROOT_INO } from '../../src/tree/ops.js';
import { openCache } from '../cache/helpers.js';

const O = 0x4f;

function vfsOver(cache: FileCache, storeSize = Infinity) {
  const view = new MemoryMeta();
  view.putInode({ ino: ROOT_INO, kind: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0, nlink: 2, atimeMs: 0, mtimeMs: 0, ctimeMs: 0 });
  const journal = {
    lastSeq: 0,
    committedSeq: 0,
    syncSettings: { policy: 'interval' as const },
    failed: null,
    append: () => Promise.resolve(++journal.lastSeq),
    flush: async () => {},
  };
  const committed = {
    readInto: (_ino: number, off: number, len: number, target: Buffer, at: number) => {
      const n = Math.max(0, Math.min(len, storeSize - off));
      target.fill(O, at, at + n);
      return n;
    },
  };
  const vfs = new Vfs({ view, committed: committed as never, journal, cache, gate: { isOpen: true, admit: async () => {} }, clock: systemClock, maxIno: ROOT_INO, log: () => undefined, cacheReads: false });
  const commit = (seq: number) => {
    journal.committedSeq = seq;
    cache.commit(seq);
    vfs.committed(seq);
  };
  return { vfs, journal, commit };
}

/** The cache's block files, to make their I/O fail as a failing disk would (test-only access). */
type BlockFiles = { handle: (b: unknown, create: boolean) => Promise<unknown>; truncate: (b: unknown, size: number) => Promise<void> };
const blockFiles = (cache: FileCache) => (cache as unknown as { blockFiles: BlockFiles }).blockFiles;
const eio = (what: string) => Object.assign(new Error(`EIO: i/o error, ${what}`), { code: 'EIO' });
const later = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The outcome of a read: the bytes as text, or the error's code. */
const outcome = (p: Promise<Buffer>) => p.then((b) => b.toString('latin1'), (e: { code?: string }) => `error ${e.code}`);

describe('Vfs: cached data the cache lost', () => {
  it('a read waiting in the cache when a write-behind fails answers the written bytes (held in memory), not the older committed ones', async () => {
    const { cache } = await openCache();
    const { vfs } = vfsOver(cache);
    const fh = await vfs.create('/f', 0o644, 2, 0, 0);
    await vfs.write(fh, 0, Buffer.alloc(100, 'N'));
    assert.equal(await outcome(vfs.read(fh, 0, 100)), 'N'.repeat(100));
    const bf = blockFiles(cache);
    const handle = bf.handle.bind(bf);
    bf.handle = async (b, create) => {
      if (!create) return handle(b, create);
      await later(5);
      throw eio('write');
    };
    const writeBehind = cache.flushIndex().catch(() => undefined);
    // Another program extends the file: its cache update queues behind the failing write-behind.
    const extend = vfs.ftruncate(fh, 200);
    await new Promise((r) => setImmediate(r));
    assert.equal(await outcome(vfs.read(fh, 0, 100)), 'N'.repeat(100));
    await Promise.all([writeBehind, extend]);
    assert.equal(await outcome(vfs.read(fh, 0, 200)), 'N'.repeat(100) + '\0'.repeat(100));
    bf.handle = handle;
    await cache.close();
  });

  it('a failed truncation in the cache keeps the file unreadable until every entry journaled before the failure is committed', async () => {
    const { cache } = await openCache({ dropCommittedWrites: true });
    const { vfs, commit } = vfsOver(cache, 100);
    const fh = await vfs.create('/f', 0o644, 2, 0, 0);
    await vfs.write(fh, 0, Buffer.alloc(100, O));
    commit(2);
    const bf = blockFiles(cache);
    const truncate = bf.truncate.bind(bf);
    bf.truncate = async () => {
      await later(5);
      throw eio('ftruncate');
    };
    await vfs.write(fh, 0, Buffer.alloc(100, 'A')); // 3
    await vfs.ftruncate(fh, 150); // 4: its cache truncation fails a moment later
    await vfs.write(fh, 0, Buffer.alloc(100, 'N')); // 5: queued behind it, dropped with the file
    await later(20);
    bf.truncate = truncate;
    commit(4);
    // The store has entries up to 4 ('A'); 'N' (5) is gone from the cache and not yet in the store.
    assert.equal(await outcome(vfs.read(fh, 0, 100)), 'error EIO');
    commit(5);
    assert.notEqual(await outcome(vfs.read(fh, 0, 100)), 'error EIO', 'readable once everything is committed');
    await cache.close();
  });
});
