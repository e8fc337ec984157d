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

/** What one `reclaim` did. */
export interface ReclaimResult {
  /** Chunks forgotten: no block refers to them any more. */
  droppedChunks: number;
  /** Pack files deleted (left without live chunks, or rewritten). */
  deletedPacks: number[];
  /** Bytes of pack files deleted, and live bytes copied out of them first. */
  freedBytes: number;
  copiedBytes: number;
  /** Every pack file's bytes afterwards. */
  packBytes: number;
  /** Mostly-dead packs left because the copy budget ran out. */
  more: boolean;
}

/** Chunks remembered as stored intact (about 130 bytes each). */
const KNOWN_CHUNKS_MAX = 100_000;
/** A pack whose live chunks fill less than this share of it is rewritten. */
const COMPACT_LIVE_RATIO = 0.5;
/** The pack being appended to is closed early, to be rewritten, once it is this big and as dead. */
const SEAL_MIN_BYTES = 4 * 1024 * 1024;

/**
 * Content-addressed chunks on disk, named by SHA-256 and kept in append-only pack files
 * (`packs/<n>.pack`) indexed in SQLite. A batch's new chunks go into the pack with one write and
 * one fdatasync, then their index rows commit in the batch's own transaction: thousands of small
 * files cost one fsync, not one each, and a crash leaves at most an unindexed tail in a pack.
 */
export class ChunkStore {
  private readonly st: Record<'get' | 'put' | 'restore' | 'move' | 'live' | 'dropDead' | 'packs' | 'packEnds' | 'liveBytes' | 'inPack', Statement>;
  private readonly readFds = new Map<number, number>();
  private pack: { n: number; size: number } | undefined;
  /** The pack whose name this process has made durable (a directory fsync after creating it). */
  private dirSyncedFor: number | undefined;
  /**
   * Chunks this process stored or read back intact: a dedup hit on one needs no read again (a
   * file of zeros is one chunk thousands of times). Damage while the store is in use is not
   * looked for; damage while it was stopped is (putMany).
   */
  private readonly known = new Set<string>();
  /** Packs deleted since `reclaim` last reported them. */
  private deleted: number[] = [];

  /** `alsoLive`: SELECTs of hashes other tables than `blocks` still need. */
  constructor(
    readonly dir: string,
    private readonly db: Database,
    alsoLive: readonly string[] = [],
  ) {
    mkdirSync(dir, { recursive: true });
    this.st = {
      get: db.prepare('SELECT pack, offset, length FROM chunks WHERE hash = ?'),
      put: db.prepare('INSERT OR IGNORE INTO chunks (hash, pack, offset, length) VALUES (?, ?, ?, ?)'),
      restore: db.prepare('UPDATE chunks SET pack = ?, offset = ?, length = ? WHERE hash = ?'),
      move: db.prepare('UPDATE chunks SET pack = ?, offset = ? WHERE hash = ?'),
      live: db.prepare('SELECT COUNT(*) AS n FROM chunks'),
      dropDead: db.prepare(`DELETE FROM chunks WHERE hash NOT IN (SELECT hash FROM blocks${alsoLive.map((q) => ` UNION ${q}`).join('')})`),
      packs: db.prepare('SELECT DISTINCT pack FROM chunks'),
      packEnds: db.prepare('SELECT pack, MAX(offset + length) AS needed FROM chunks GROUP BY pack'),
      liveBytes: db.prepare('SELECT pack, SUM(length) AS bytes FROM chunks GROUP BY pack'),
      inPack: db.prepare('SELECT hash, offset, length FROM chunks WHERE pack = ? ORDER BY offset'),
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
  async putMany(chunks: ReadonlyMap<string, Buffer>): Promise<{ restored: string[] }> {
    const todo: [string, Buffer][] = [];
    const restored = new Set<string>();
    for (const [hash, data] of chunks) {
      const row = this.st.get.get(hash) as ChunkRow | undefined;
      if (row === undefined) todo.push([hash, data]);
      // Stored already: only if its copy still reads back as itself. Deduplicated against a pack
      // damaged or deleted on disk, new writes of that content were lost (a review); stored
      // again, they also mend the files that held the damaged copy.
      else if (!this.known.has(hash) && !this.intact(row, hash)) {
        todo.push([hash, data]);
        restored.add(hash);
      }
    }
    if (todo.length === 0) return { restored: [] };
    const { n, offset: start } = await this.append(todo.map(([, data]) => data));
    let offset = start;
    for (const [hash, data] of todo) {
      if (restored.has(hash)) this.st.restore.run(n, offset, data.length, hash);
      else this.st.put.run(hash, n, offset, data.length);
      this.remember(hash);
      offset += data.length;
    }
    return { restored: [...restored] };
  }

  /**
   * Pack files the index needs that are missing or shorter than it says (damage on disk: files
   * using them read EIO). Byte damage inside a pack takes `aether store verify` to find.
   */
  damagedPacks(): { path: string; bytes: number; needed: number }[] {
    const out: { path: string; bytes: number; needed: number }[] = [];
    for (const { pack, needed } of this.st.packEnds.all() as { pack: number; needed: number }[]) {
      const path = this.packPath(pack);
      const bytes = existsSync(path) ? fstatSize(path) : -1;
      if (bytes < needed) out.push({ path, bytes, needed });
    }
    return out;
  }

  /** True when the chunk is stored and its copy reads back with its hash (a hub asked whether it has it). */
  hasIntact(hash: string): boolean {
    const row = this.st.get.get(hash) as ChunkRow | undefined;
    return row !== undefined && (this.known.has(hash) || this.intact(row, hash));
  }

  /** True when the chunk's stored copy reads back with its hash. */
  private intact(row: ChunkRow, hash: string): boolean {
    const copy = Buffer.allocUnsafe(row.length);
    try {
      this.readRow(row, hash, copy, 0, 0, row.length);
    } catch (err) {
      if (err instanceof AetherError) return false;
      throw err;
    }
    if (ChunkStore.hash(copy) !== hash) return false;
    this.remember(hash);
    return true;
  }

  private remember(hash: string): void {
    // Bounded: past it, chunks are read back again, once each.
    if (this.known.size >= KNOWN_CHUNKS_MAX) this.known.clear();
    this.known.add(hash);
  }

  /** Appends `datas` to the current pack, durably (data and name); returns where the first begins. */
  private async append(datas: Buffer[]): Promise<{ n: number; offset: number }> {
    const { n } = this.currentPack();
    const fh = await open(this.packPath(n), 'a');
    let end: number;
    try {
      // The real end of the file: a crash may have left an unindexed tail, which stays unused.
      const offset0 = (await fh.stat()).size;
      let pending = datas;
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
    this.pack = { n, size: end + datas.reduce((sum, b) => sum + b.length, 0) };
    return { n, offset: end };
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
      try {
        fd = openSync(this.packPath(row.pack), 'r');
      } catch (err) {
        // Another connection (the writer thread) moved the chunk and deleted its old pack
        // after this one looked the row up: the committed row says where it is now.
        // Any other failure is the store's, not the file's: a typed error naming the pack, which
        // the mount logs and answers with EIO (a missing pack answered ENOENT: "no such file").
        const lost = (): AetherError => new AetherError('STORE_CORRUPT', `cannot read chunk ${hash} from pack ${this.packPath(row.pack)}: ${(err as Error).message}`, { cause: err });
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw lost();
        const now = this.row(hash);
        if (now.pack === row.pack) throw lost();
        return this.readRow(now, hash, out, at, from, length);
      }
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
    for (const n of this.packNumbers()) {
      if (!live.has(n) && n !== current) this.deletePack(n);
    }
    return dropped;
  }

  /**
   * Gives space back while the store is in use: `collect`, then packs mostly dead (live chunks
   * under half the file) are rewritten, emptiest first, copying at most `copyBudgetBytes` of
   * live chunks into the current pack. The copies are durable before their rows move (one
   * transaction), and the old pack goes only after that commit: a crash leaves either location
   * valid, plus at worst an unindexed tail or an empty pack that the next collect deletes. Must
   * not run inside another transaction or alongside a batch (the Store runs it in turn).
   */
  async reclaim(copyBudgetBytes: number): Promise<ReclaimResult> {
    const sizeBefore = this.packBytes();
    const droppedChunks = this.collect();
    let copiedBytes = 0;
    let more = false;
    const live = new Map((this.st.liveBytes.all() as { pack: number; bytes: number }[]).map((r) => [r.pack, r.bytes]));
    const open = this.currentPack();
    // A big write deleted right away lies in the pack still being appended to: close it.
    if (open.size >= SEAL_MIN_BYTES && (live.get(open.n) ?? 0) < open.size * COMPACT_LIVE_RATIO) this.pack = { n: open.n + 1, size: 0 };
    const current = this.currentPack().n;
    const candidates = this.packNumbers()
      .filter((n) => n !== current)
      .map((n) => ({ n, live: live.get(n) ?? 0, size: fstatSize(this.packPath(n)) }))
      .filter((p) => p.live < p.size * COMPACT_LIVE_RATIO)
      .sort((a, b) => a.live / a.size - b.live / b.size);
    for (const p of candidates) {
      if (copiedBytes + p.live > copyBudgetBytes && copiedBytes > 0) {
        more = true;
        break;
      }
      const rows = this.st.inPack.all(p.n) as (ChunkRow & { hash: string })[];
      const datas = rows.map((r) => {
        const b = Buffer.allocUnsafe(r.length);
        this.readRow({ pack: p.n, offset: r.offset, length: r.length }, r.hash, b, 0, 0, r.length);
        return b;
      });
      this.db.exec('BEGIN IMMEDIATE');
      try {
        const { n, offset: start } = await this.append(datas);
        let offset = start;
        for (const r of rows) {
          this.st.move.run(n, offset, r.hash);
          offset += r.length;
        }
        this.db.exec('COMMIT');
      } catch (err) {
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
        throw err;
      }
      this.deletePack(p.n);
      copiedBytes += p.live;
    }
    const packBytes = this.packBytes();
    const deletedPacks = this.deleted.splice(0);
    return { droppedChunks, deletedPacks, freedBytes: Math.max(0, sizeBefore + copiedBytes - packBytes), copiedBytes, packBytes, more };
  }

  /** Closes this connection's descriptors of packs another connection deleted (their space is freed once no one holds them). */
  forgetPacks(numbers: readonly number[]): void {
    for (const n of numbers) this.closeFd(n);
  }

  private packNumbers(): number[] {
    return readdirSync(this.dir)
      .map((f) => /^(\d+)\.pack$/.exec(f)?.[1])
      .filter((x): x is string => x !== undefined)
      .map(Number);
  }

  /** Every pack file's bytes. */
  packBytes(): number {
    return this.packNumbers().reduce((sum, n) => sum + fstatSize(this.packPath(n)), 0);
  }

  private deletePack(n: number): void {
    this.closeFd(n);
    rmSync(this.packPath(n), { force: true });
    this.deleted.push(n);
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
