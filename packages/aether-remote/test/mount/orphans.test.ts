/**
 * Issue 5: a file unlinked while still open when the mount is killed (`kill -9`) is gone after the
 * remount, and the store lets go of its content.
 */
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, fstatSync, fsyncSync, openSync, readdirSync, readFileSync, readSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { mountSuite, startMount, stopCleanly, waitDrained, type MountProcess } from './harness.js';

/** The store keeps files as 64 KiB blocks, each a chunk named by its SHA-256 (store/sqlite-meta.ts). */
const BLOCK_BYTES = 64 * 1024;

function blockHashes(data: Buffer): string[] {
  const out: string[] = [];
  for (let at = 0; at < data.length; at += BLOCK_BYTES) out.push(createHash('sha256').update(data.subarray(at, at + BLOCK_BYTES)).digest('hex'));
  return out;
}

/** What the store (read-only, beside the running mount) lists for `ino` and for chunk `hashes`. */
function storeView(stateDir: string, ino: number, hashes: string[]): { inode: boolean; blocks: number; chunks: number; orphans: number } {
  const db = new Database(join(stateDir, 'store', 'meta.sqlite'), { readonly: true });
  try {
    const count = (sql: string, ...args: unknown[]): number => (db.prepare(sql).get(...args) as { n: number }).n;
    return {
      inode: count('SELECT COUNT(*) AS n FROM inodes WHERE ino = ?', ino) === 1,
      blocks: count('SELECT COUNT(*) AS n FROM blocks WHERE ino = ?', ino),
      chunks: hashes.filter((h) => count('SELECT COUNT(*) AS n FROM chunks WHERE hash = ?', h) === 1).length,
      orphans: count('SELECT COUNT(*) AS n FROM inodes WHERE nlink = 0'),
    };
  } finally {
    db.close();
  }
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // The mount behind it is dead.
  }
}

describe('a file unlinked while open at a kill -9', () => {
  const suite = mountSuite();

  const env = { AFS_AETHER_JOURNAL_SYNC_POLICY: 'immediate' };

  /**
   * Writes `victim` and `keeper`, drains them into the store, unlinks `victim` while it is open,
   * runs `beforeKill` with the open descriptor, kills the mount, remounts and checks the tree.
   */
  async function scenario(beforeKill: (m: MountProcess, fd: number) => Promise<void>): Promise<{ m: MountProcess; ino: number; victimHashes: string[]; keeperHashes: string[] }> {
    const base = suite.dir('aether-orphan-');
    const opts = { mnt: join(base, 'mnt'), stateDir: join(base, 'state'), env };
    const m = await startMount(opts);
    const victim = randomBytes(5 * BLOCK_BYTES + 100);
    const keeper = randomBytes(3 * BLOCK_BYTES);
    writeFileSync(join(m.mnt, 'keeper'), keeper);
    const fd = openSync(join(m.mnt, 'victim'), 'w+');
    writeSync(fd, victim);
    const ino = fstatSync(fd).ino;
    await waitDrained(m);
    const victimHashes = blockHashes(victim);
    const keeperHashes = blockHashes(keeper);
    // The check below can fail: before the unlink the store lists the victim's content.
    assert.deepEqual(storeView(m.stateDir, ino, victimHashes), { inode: true, blocks: 6, chunks: 6, orphans: 0 });

    unlinkSync(join(m.mnt, 'victim'));
    assert.deepEqual(readdirSync(m.mnt), ['keeper']);
    const back = Buffer.alloc(victim.length);
    assert.equal(readSync(fd, back, 0, back.length, 0), victim.length);
    assert.ok(back.equals(victim), 'the open handle still reads the unlinked file');
    await beforeKill(m, fd);
    await m.kill9();
    closeQuietly(fd);

    const again = await startMount(opts);
    assert.deepEqual(readdirSync(again.mnt), ['keeper'], 'the unlinked file (or a .fuse_hidden name) came back');
    assert.ok(readFileSync(join(again.mnt, 'keeper')).equals(keeper));
    await waitDrained(again);
    return { m: again, ino, victimHashes, keeperHashes };
  }

  it('with its unlink already in the store: gone, and its chunks collected at the remount', async () => {
    const { m, ino, victimHashes, keeperHashes } = await scenario(async (mount) => waitDrained(mount).then(() => undefined));
    assert.deepEqual(storeView(m.stateDir, ino, victimHashes), { inode: false, blocks: 0, chunks: 0, orphans: 0 });
    assert.equal(storeView(m.stateDir, ino, keeperHashes).chunks, keeperHashes.length);
    await stopCleanly(m);
  });

  /**
   * An orphan that journal entries not yet drained still change stays for them, ends through the
   * journal (a `forget` the remount journals), and its chunks are collected at the next start.
   */
  async function droppedThenCollected(m: MountProcess, ino: number, victimHashes: string[], keeperHashes: string[]): Promise<void> {
    const s = storeView(m.stateDir, ino, victimHashes);
    assert.deepEqual({ inode: s.inode, blocks: s.blocks, orphans: s.orphans }, { inode: false, blocks: 0, orphans: 0 });
    assert.doesNotMatch(m.stderr(), /store refused|does not apply/);
    await stopCleanly(m);
    const next = await startMount({ mnt: m.mnt, stateDir: m.stateDir, env });
    assert.deepEqual(storeView(next.stateDir, ino, victimHashes), { inode: false, blocks: 0, chunks: 0, orphans: 0 });
    assert.equal(storeView(next.stateDir, ino, keeperHashes).chunks, keeperHashes.length);
    await stopCleanly(next);
  }

  it('written through the open handle after the unlink, with draining paused: the remount starts, drops it, the next start collects it', async () => {
    const { m, ino, victimHashes, keeperHashes } = await scenario(async (mount, fd) => {
      await waitDrained(mount);
      assert.equal(mount.ctl(['sync', 'pause']).code, 0);
      // Journaled, not drained: the replay meets a write to an inode the store holds as an orphan.
      writeSync(fd, randomBytes(1000), 0, 1000, 2 * BLOCK_BYTES);
      fsyncSync(fd);
    });
    await droppedThenCollected(m, ino, victimHashes, keeperHashes);
  });

  it('with its unlink only in the journal (draining paused): the remount drops it, the next start collects it', async () => {
    const { m, ino, victimHashes, keeperHashes } = await scenario(async (mount) => {
      assert.equal(mount.ctl(['sync', 'pause']).code, 0);
    });
    await droppedThenCollected(m, ino, victimHashes, keeperHashes);
  });
});
