import { createHash } from 'node:crypto';
import { closeSync, existsSync, fstatSync, mkdirSync, openSync, readdirSync, readSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import type { Database, Statement } from 'better-sqlite3';
import { AetherError } from '../errors.js';
import { skipBytes } from '../runtime/infra/buffers.js';

/** A pack is closed for appends once it reaches this size. */
export const PACK_BYTES_MAX = 64 * 1024 * 1024;

interface ChunkRow {
  pack: number;
  offset: number;
  length: number;
}

/**
 * Content-addressed chunks on disk, named by SHA-256 and kept in append-only pack files
 * (`packs/<n>.pack`) indexed in SQLite. A batch's new chunks go into the pack with one write and
 * one fdatasync, then their index rows commit in the batch's own transaction: thousands of small
 * files cost one fsync, not one each, and a crash leaves at most an unindexed tail in a pack.
 */
export class ChunkStore {
  private readonly st: Record<'get' | 'put' | 'live' | 'dropDead' | 'packs' | 'packLive', Statement>;
  private readonly readFds = new Map<number, number>();
  private pack: { n: number; size: number } | undefined;
  /** The pack whose name this process has made durable (a directory fsync after creating it). */
  private dirSyncedFor: number | undefined;

  constructor(
    readonly dir: string,
    db: Database,
  ) {
    mkdirSync(dir, { recursive: true });
    this.st = {
      get: db.prepare('SELECT pack, offset, length FROM chunks WHERE hash = ?'),
      put: db.prepare('INSERT OR IGNORE INTO chunks (hash, pack, offset, length) VALUES (?, ?, ?, ?)'),
      live: db.prepare('SELECT COUNT(*) AS n FROM chunks'),
      dropDead: db.prepare('DELETE FROM chunks WHERE hash NOT IN (SELECT DISTINCT hash FROM blocks)'),
      packs: db.prepare('SELECT DISTINCT pack FROM chunks'),
      packLive: db.prepare('SELECT 1 FROM chunks WHERE pack = ? LIMIT 1'),
    };
  }

  static hash(data: Buffer): string {
    return createHash('sha256').update(data).digest('hex');
  }

  private packPath(n: number): string {
    return join(this.dir, `${n}.pack`);
  }

  has(hash: string): boolean {
    return this.st.get.get(hash) !== undefined;
  }

  /** The pack new chunks go to: the newest one, or a new one once it is full. */
  private currentPack(): { n: number; size: number } {
    if (this.pack && this.pack.size < PACK_BYTES_MAX) return this.pack;
    if (this.pack) return (this.pack = { n: this.pack.n + 1, size: 0 });
    const numbers = readdirSync(this.dir)
      .map((f) => /^(\d+)\.pack$/.exec(f)?.[1])
      .filter((x): x is string => x !== undefined)
      .map(Number);
    const n = numbers.length ? Math.max(...numbers) : 1;
    const size = existsSync(this.packPath(n)) ? fstatSize(this.packPath(n)) : 0;
    return (this.pack = size >= PACK_BYTES_MAX ? { n: n + 1, size: 0 } : { n, size });
  }

  /** How many chunks are stored. */
  get count(): number {
    return (this.st.live.get() as { n: number }).n;
  }

  /**
   * Appends every chunk not stored yet to the current pack, makes it durable, and records it in
   * the open transaction. Call inside the batch's transaction, before its COMMIT.
   */
  async putMany(chunks: ReadonlyMap<string, Buffer>): Promise<void> {
    const todo = [...chunks].filter(([hash]) => !this.has(hash));
    if (todo.length === 0) return;
    const { n } = this.currentPack();
    const fh = await open(this.packPath(n), 'a');
    let end: number;
    try {
      // The real end of the file: a crash may have left an unindexed tail, which stays unused.
      const offset0 = (await fh.stat()).size;
      let pending = todo.map(([, data]) => data);
      let remaining = pending.reduce((sum, b) => sum + b.length, 0);
      while (remaining > 0) {
        // A disk filling up ends a writev short without an error; the next one reports it.
        const { bytesWritten } = await fh.writev(pending);
        if (bytesWritten <= 0) throw new AetherError('STORE_WRITE_FAILED', `pack ${n}: a write made no progress with ${remaining} bytes to go`);
        remaining -= bytesWritten;
        if (remaining > 0) pending = skipBytes(pending, bytesWritten);
      }
      await fh.datasync();
      end = offset0;
    } finally {
      await fh.close();
    }
    // The pack's name must be durable before its chunks are indexed: a pack made by a process
    // killed before this point is synced by the next one to write to it.
    if (this.dirSyncedFor !== n) {
      await syncDir(this.dir);
      this.dirSyncedFor = n;
    }
    let offset = end;
    for (const [hash, data] of todo) {
      this.st.put.run(hash, n, offset, data.length);
      offset += data.length;
    }
    this.pack = { n, size: offset };
  }

  get(hash: string): Buffer {
    const out = Buffer.allocUnsafe(this.row(hash).length);
    this.readInto(hash, out, 0, 0, out.length);
    return out;
  }

  /** Copies `length` bytes of the chunk from byte `from` into `out` at `at`, straight from its pack. */
  readInto(hash: string, out: Buffer, at: number, from: number, length: number): void {
    const row = this.row(hash);
    if (from + length > row.length) throw new RangeError(`chunk ${hash} has ${row.length} bytes, not ${from + length}`);
    this.readRow(row, hash, out, at, from, length);
  }

  private readRow(row: ChunkRow, hash: string, out: Buffer, at: number, from: number, length: number): void {
    let fd = this.readFds.get(row.pack);
    if (fd === undefined) {
      fd = openSync(this.packPath(row.pack), 'r');
      this.readFds.set(row.pack, fd);
    }
    const got = readSync(fd, out, at, length, row.offset + from);
    if (got !== length) throw new AetherError('STORE_CORRUPT', `pack ${row.pack} is shorter than its index says (chunk ${hash})`);
  }

  /** Like readInto, for at most `maxLength` bytes, as many as the chunk has; returns how many. */
  readUpTo(hash: string, out: Buffer, at: number, from: number, maxLength: number): number {
    const row = this.row(hash);
    const length = Math.max(0, Math.min(maxLength, row.length - from));
    if (length > 0) this.readRow(row, hash, out, at, from, length);
    return length;
  }

  private row(hash: string): ChunkRow {
    const row = this.st.get.get(hash) as ChunkRow | undefined;
    if (!row) throw new AetherError('STORE_CORRUPT', `chunk ${hash} is not in the store`);
    return row;
  }

  /** Forgets chunks no block refers to and deletes packs left with none; returns how many chunks were dropped. */
  collect(): number {
    const before = this.count;
    this.st.dropDead.run();
    const dropped = before - this.count;
    const live = new Set((this.st.packs.all() as { pack: number }[]).map((r) => r.pack));
    const current = this.currentPack().n;
    for (const f of readdirSync(this.dir)) {
      const n = Number(/^(\d+)\.pack$/.exec(f)?.[1]);
      if (Number.isInteger(n) && !live.has(n) && n !== current) {
        this.closeFd(n);
        rmSync(this.packPath(n), { force: true });
      }
    }
    return dropped;
  }

  private closeFd(n: number): void {
    const fd = this.readFds.get(n);
    if (fd !== undefined) closeSync(fd);
    this.readFds.delete(n);
  }

  close(): void {
    for (const n of [...this.readFds.keys()]) this.closeFd(n);
  }
}

function fstatSize(path: string): number {
  const fd = openSync(path, 'r');
  try {
    return fstatSync(fd).size;
  } finally {
    closeSync(fd);
  }
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
