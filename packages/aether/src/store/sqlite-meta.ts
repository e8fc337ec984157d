import type { Database, Statement } from 'better-sqlite3';
import { TreeError } from '../tree/apply.js';
import type { BlockMapTx, BlockRef } from '../tree/content.js';
import type { Inode } from '../tree/inode.js';
import type { Ino } from '../tree/ops.js';
import { ChunkStore } from './chunks.js';

/** Files are stored as fixed-size blocks, each a content-addressed chunk; absent blocks are holes. */
export const BLOCK_BYTES = 64 * 1024;

export interface InodeRow {
  ino: number;
  kind: Inode['kind'];
  mode: number;
  uid: number;
  gid: number;
  size: number;
  nlink: number;
  atime_ms: number;
  mtime_ms: number;
  ctime_ms: number;
  target: string | null;
}

export function toInode(r: InodeRow): Inode {
  const inode: Inode = { ino: r.ino, kind: r.kind, mode: r.mode, uid: r.uid, gid: r.gid, size: r.size, nlink: r.nlink, atimeMs: r.atime_ms, mtimeMs: r.mtime_ms, ctimeMs: r.ctime_ms };
  if (r.target !== null) inode.target = r.target;
  return inode;
}

/**
 * MetaTx over SQLite, used inside one transaction per drained batch. Writes to a block are
 * gathered in memory and hashed once at `finish()`, so many small writes to one file cost one
 * chunk per touched block. Inodes too: each is read at most once and written back once at
 * `finish()`, however many ops of the batch touch it (`tar x` changes a file five times and its
 * directory once per entry; `rm -r` a directory once per name). SQL of the caller's own on the
 * `inodes` table inside the same transaction must therefore come before any use of this object.
 * A write that covers a whole block keeps a view of the op's data instead of a copy (`borrowed`),
 * so an op's data must not change until the batch's chunks are stored (ops never change).
 */
export class SqliteMeta implements BlockMapTx {
  private readonly st: Record<string, Statement>;
  private readonly dirtyBlocks = new Map<string, { ino: Ino; idx: number; data: Buffer; borrowed?: boolean }>();
  /** Inodes this batch read or wrote (null: absent or deleted), and those to write back. */
  private readonly inodes = new Map<Ino, Inode | null>();
  private readonly dirtyInodes = new Set<Ino>();

  constructor(
    db: Database,
    private readonly chunks: ChunkStore,
  ) {
    this.st = {
      getInode: db.prepare('SELECT * FROM inodes WHERE ino = ?'),
      putInode: db.prepare('INSERT OR REPLACE INTO inodes (ino, kind, mode, uid, gid, size, nlink, atime_ms, mtime_ms, ctime_ms, target) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)'),
      deleteInode: db.prepare('DELETE FROM inodes WHERE ino = ?'),
      lookup: db.prepare('SELECT ino FROM dentries WHERE parent = ? AND name = ?'),
      addEntry: db.prepare('INSERT INTO dentries (parent, name, ino) VALUES (?, ?, ?)'),
      removeEntry: db.prepare('DELETE FROM dentries WHERE parent = ? AND name = ?'),
      hasEntries: db.prepare('SELECT 1 FROM dentries WHERE parent = ? LIMIT 1'),
      parentOf: db.prepare('SELECT parent FROM dentries WHERE ino = ? LIMIT 1'),
      getBlock: db.prepare('SELECT hash FROM blocks WHERE ino = ? AND idx = ?'),
      putBlock: db.prepare('INSERT OR REPLACE INTO blocks (ino, idx, hash) VALUES (?, ?, ?)'),
      dropBlocksFrom: db.prepare('DELETE FROM blocks WHERE ino = ? AND idx >= ?'),
      dropBlocks: db.prepare('DELETE FROM blocks WHERE ino = ?'),
      dropBlock: db.prepare('DELETE FROM blocks WHERE ino = ? AND idx = ?'),
      blocksOf: db.prepare('SELECT idx, hash FROM blocks WHERE ino = ? ORDER BY idx'),
    };
  }

  getInode(ino: Ino): Inode | undefined {
    const known = this.inodes.get(ino);
    if (known !== undefined) return known ?? undefined;
    const r = this.st.getInode!.get(ino) as InodeRow | undefined;
    const inode = r ? toInode(r) : undefined;
    this.inodes.set(ino, inode ?? null);
    return inode;
  }
  putInode(inode: Inode): void {
    // The row is written at finish(): refuse here what the table would refuse then, so a bad op
    // fails alone, not its whole batch.
    if (!storable(inode)) throw new TreeError('EINVAL', `inode ${inode.ino}: not a storable inode`);
    this.inodes.set(inode.ino, inode);
    this.dirtyInodes.add(inode.ino);
  }
  deleteInode(ino: Ino): void {
    this.inodes.set(ino, null);
    this.dirtyInodes.add(ino);
  }

  private writeInodes(): void {
    for (const ino of this.dirtyInodes) {
      const i = this.inodes.get(ino);
      if (i) this.st.putInode!.run(i.ino, i.kind, i.mode, i.uid, i.gid, i.size, i.nlink, i.atimeMs, i.mtimeMs, i.ctimeMs, i.target ?? null);
      else this.st.deleteInode!.run(ino);
    }
    this.dirtyInodes.clear();
  }
  lookup(parent: Ino, name: string): Ino | undefined {
    return (this.st.lookup!.get(parent, name) as { ino: number } | undefined)?.ino;
  }
  addEntry(parent: Ino, name: string, ino: Ino): void {
    this.st.addEntry!.run(parent, name, ino);
  }
  removeEntry(parent: Ino, name: string): void {
    this.st.removeEntry!.run(parent, name);
  }
  hasEntries(dir: Ino): boolean {
    return this.st.hasEntries!.get(dir) !== undefined;
  }
  parentOf(dir: Ino): Ino | undefined {
    return (this.st.parentOf!.get(dir) as { parent: number } | undefined)?.parent;
  }

  /**
   * The batch's copy of block `idx` of `ino`, at least `end` bytes long (bytes past its length
   * are zeros). Copies start at what they need and grow by doubling: zeroing a whole 64 KiB block
   * for each 4 KiB file cost the writer thread more than hashing it.
   */
  private block(ino: Ino, idx: number, end: number): Buffer {
    const key = `${ino}:${idx}`;
    let b = this.dirtyBlocks.get(key);
    if (!b) {
      const row = this.st.getBlock!.get(ino, idx) as { hash: string } | undefined;
      const stored = row ? this.chunks.get(row.hash) : undefined;
      const data = Buffer.alloc(grownLength(Math.max(end, stored?.length ?? 0)));
      stored?.copy(data);
      b = { ino, idx, data };
      this.dirtyBlocks.set(key, b);
    } else if (b.borrowed) {
      b.data = Buffer.from(b.data); // about to change: a copy of its own
      b.borrowed = false;
    } else if (b.data.length < end) {
      const data = Buffer.alloc(grownLength(end));
      b.data.copy(data);
      b.data = data;
    }
    return b.data;
  }

  writeContent(ino: Ino, offset: number, data: Buffer): void {
    let done = 0;
    while (done < data.length) {
      const pos = offset + done;
      const idx = Math.floor(pos / BLOCK_BYTES);
      const within = pos - idx * BLOCK_BYTES;
      const n = Math.min(BLOCK_BYTES - within, data.length - done);
      // The whole block replaced (sequential writes): no zeroed copy to fill, only a view.
      if (n === BLOCK_BYTES) this.dirtyBlocks.set(`${ino}:${idx}`, { ino, idx, data: data.subarray(done, done + n), borrowed: true });
      else data.copy(this.block(ino, idx, within + n), within, done, done + n);
      done += n;
    }
  }

  truncateContent(ino: Ino, size: number): void {
    const keep = Math.ceil(size / BLOCK_BYTES);
    this.st.dropBlocksFrom!.run(ino, keep);
    for (const [key, b] of this.dirtyBlocks) if (b.ino === ino && b.idx >= keep) this.dirtyBlocks.delete(key);
    const within = size % BLOCK_BYTES;
    if (within === 0) return;
    const last = this.block(ino, keep - 1, 0);
    if (within < last.length) last.fill(0, within);
  }

  dropContent(ino: Ino): void {
    this.st.dropBlocks!.run(ino);
    for (const [key, b] of this.dirtyBlocks) if (b.ino === ino) this.dirtyBlocks.delete(key);
  }

  /** Replaces the whole block map of `ino`: the chunks must be in the store by the batch's commit. */
  replaceBlocks(ino: Ino, blocks: readonly BlockRef[]): void {
    this.dropContent(ino);
    for (const [idx, hash] of blocks) this.st.putBlock!.run(ino, idx, hash);
  }

  /** The block map of `ino`, ascending by index. */
  blocksOf(ino: Ino): BlockRef[] {
    return (this.st.blocksOf!.all(ino) as { idx: number; hash: string }[]).map((r) => [r.idx, r.hash] as const);
  }

  /**
   * Writes back the inodes this batch changed, then hashes every block it touched, cut to the
   * file's size (a 4 KiB file costs a 4 KiB chunk), and records it; all-zero blocks become holes.
   * Returns the chunks the caller must make durable before committing.
   */
  finish(): Map<string, Buffer> {
    this.writeInodes();
    const newChunks = new Map<string, Buffer>();
    for (const b of this.dirtyBlocks.values()) {
      const inode = this.getInode(b.ino);
      if (inode === undefined) continue;
      const length = Math.max(0, Math.min(BLOCK_BYTES, inode.size - b.idx * BLOCK_BYTES));
      const data = (b.data.length >= length ? b.data : this.block(b.ino, b.idx, length)).subarray(0, length);
      if (data.length === 0 || isZero(data)) {
        this.st.dropBlock!.run(b.ino, b.idx);
        continue;
      }
      const hash = ChunkStore.hash(data);
      // No copy: a dirty block's buffer belongs to this batch (or is an op's) and is dropped below.
      newChunks.set(hash, data);
      this.st.putBlock!.run(b.ino, b.idx, hash);
    }
    this.dirtyBlocks.clear();
    return newChunks;
  }
}

/** A block copy's length for `end` bytes: a power of two from 4 KiB, at most a block. */
function grownLength(end: number): number {
  let n = 4096;
  while (n < end) n *= 2;
  return Math.min(n, BLOCK_BYTES);
}

const KINDS: ReadonlySet<string> = new Set(['file', 'dir', 'symlink']);
function storable(i: Inode): boolean {
  return KINDS.has(i.kind) && [i.ino, i.mode, i.uid, i.gid, i.size, i.nlink, i.atimeMs, i.mtimeMs, i.ctimeMs].every(Number.isFinite);
}

const ZERO = Buffer.alloc(BLOCK_BYTES);
function isZero(b: Buffer): boolean {
  return b.equals(ZERO.subarray(0, b.length));
}
