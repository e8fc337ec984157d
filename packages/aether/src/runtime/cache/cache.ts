import { join } from 'node:path';
import type { Registry } from 'prom-client';
import type { CacheConfig } from '../../config/model.js';
import type { ConfigStore } from '../../config/store.js';
import { AetherError } from '../../errors.js';
import { systemClock, type Clock, type TimerHandle } from '../infra/clock.js';
import type { CachePressure, CachePressureSource } from '../infra/backpressure/inputs.js';
import { Block } from './block.js';
import { BlockFiles } from './block-files.js';
import { DiskFree, defaultStatfs, type StatfsFn } from './disk-free.js';
import { CLEAN, HOLE, KEEP, cleanPieces, holePieces, minDirtySeq, notDirtyBytes, overlay, writablePieces, type OverlayResult } from './extents.js';
import { FileLocks } from './file-locks.js';
import { readIndex, writeIndex, type IndexEntry } from './index-file.js';
import { LruList } from './lru.js';
import { CacheMetrics } from './metrics.js';

export const DEFAULT_BLOCK_BYTES = 1024 * 1024;

export interface CacheOptions {
  /** The cache folder, normally `<state_dir>/cache`; created when missing. */
  dir: string;
  registry: Registry;
  /** `[cache]` values; with `config` and none given, its current section. */
  limits?: CacheConfig;
  /** When given, `[cache]` reloads apply live (a lower clean quota evicts at once). */
  config?: ConfigStore;
  clock?: Clock;
  statfs?: StatfsFn;
  /** Size of a block: the unit of storage and of LRU eviction (default 1 MiB; fixed per cache folder). */
  blockBytes?: number;
  /** How often a changed index is rewritten (default 5000 ms; 0: only on flushIndex/close). */
  indexFlushIntervalMs?: number;
  /** How often free space is measured (default 1000 ms; 0: only on demand). */
  diskFreePollMs?: number;
  /** Bound on open block files (default 256). */
  maxOpenFiles?: number;
  /**
   * Written bytes that get committed before they were written behind are dropped instead (the
   * block leaves the cache, as if evicted, uncounted): for an owner whose committed content is on
   * local disk anyway (the mount's store or replica), caching what it wrote would only write it
   * twice. Data put with `putClean` (reads) is cached as usual. Default false.
   */
  dropCommittedWrites?: boolean;
  /** Highest journal seq already committed when the cache opens (default -1: none). */
  committedSeq?: number;
}

export interface ReadResult {
  /** `length` bytes; zero where a hole is. */
  data: Buffer;
  /** Ranges (absolute offsets) the cache holds nothing for: the caller fetches or zero-fills them. */
  holes: { offset: number; length: number }[];
  /** Hand back to `putClean` so data fetched for a file that changed meanwhile is not stored. */
  token: number;
}

export interface WriteOptions {
  /** A reservation from `reserveDirty`, consumed by this write. */
  reservation?: DirtyReservation;
  /** Journal replay at start-up: acknowledged data is restored even past the dirty quota. */
  replay?: boolean;
}

export interface DirtyReservation {
  readonly bytes: number;
  release(): void;
}

export interface CacheStats {
  dirty_bytes: number;
  clean_bytes: number;
  reserved_dirty_bytes: number;
  /** Blocks holding data (the index's entries). */
  entries: number;
  files: number;
  max_bytes: number;
  dirty_max_bytes: number;
  disk_free_bytes: number | null;
  block_bytes: number;
  committed_seq: number;
}

export interface ClearResult {
  freed_clean_bytes: number;
  freed_blocks: number;
}

interface FileEntry {
  blocks: Map<number, Block>;
  /** Change counter value at this file's last truncate or invalidate. */
  changedAt: number;
}

/** The pieces of [offset, offset + length) in each block: absolute `start`/`end`, and the block's `base`. */
function* blockSpans(offset: number, length: number, blockBytes: number): Generator<{ index: number; base: number; start: number; end: number }> {
  for (let start = offset; start < offset + length; ) {
    const index = Math.floor(start / blockBytes);
    const base = index * blockBytes;
    const end = Math.min(offset + length, base + blockBytes);
    yield { index, base, start, end };
    start = end;
  }
}

function assertCount(name: string, v: number): void {
  if (!Number.isSafeInteger(v) || v < 0) throw new TypeError(`${name} must be a non-negative safe integer, got ${v}`);
}

/**
 * Aether's local cache of file contents: fixed-size blocks in sparse files under the state
 * folder, with exact clean/dirty accounting, a clean quota with LRU eviction, a hard dirty quota,
 * and a persistent index of clean data. See README.md in this folder for the layout and the
 * crash-safety argument.
 */
export class FileCache implements CachePressureSource {
  readonly blockBytes: number;
  private readonly dropCommittedWrites: boolean;
  private readonly files = new Map<number, FileEntry>();
  private readonly dirtyBlocks = new Set<Block>();
  private readonly lru = new LruList<Block>();
  private readonly locks = new FileLocks();
  private readonly blockFiles: BlockFiles;
  private readonly disk: DiskFree;
  private readonly metrics: CacheMetrics;
  private readonly clock: Clock;
  private readonly listeners = new Set<() => void>();
  private readonly lostListeners = new Set<(fileId: number, err: unknown) => void>();
  private readonly stallListeners = new Set<(err: unknown, heldBytes: number) => void>();
  private readonly background = new Set<Promise<void>>();
  private readonly pressure: CachePressure = { dirtyBytes: 0, diskFreeBytes: null };
  private readonly unobserve: (() => void) | undefined;
  private maxBytes: number;
  private dirtyMaxBytes: number;
  private dirtyTotal = 0;
  private cleanTotal = 0;
  private reservedTotal = 0;
  private blockCount = 0;
  private committed: number;
  private nextGen = 1;
  private changeCounter = 0;
  /** Highest change counter of a file whose entry was dropped; guards `putClean` for it. */
  private forgottenChangedAt = 0;
  private indexStale = false;
  private flushing: Promise<void> | null = null;
  private flushTimer: TimerHandle | null = null;
  private closing = false;
  private closed = false;

  static async open(opts: CacheOptions): Promise<FileCache> {
    const cache = new FileCache(opts);
    await cache.load();
    return cache;
  }

  private constructor(private readonly opts: CacheOptions) {
    const limits = opts.limits ?? opts.config?.current.cache;
    if (!limits) throw new TypeError('FileCache needs limits or a ConfigStore');
    this.maxBytes = limits.max_bytes;
    this.dirtyMaxBytes = limits.dirty_max_bytes;
    this.blockBytes = opts.blockBytes ?? DEFAULT_BLOCK_BYTES;
    this.dropCommittedWrites = opts.dropCommittedWrites ?? false;
    assertCount('blockBytes', this.blockBytes);
    this.committed = opts.committedSeq ?? -1;
    this.clock = opts.clock ?? systemClock;
    this.blockFiles = new BlockFiles(join(opts.dir, 'blocks'), opts.maxOpenFiles ?? 256, (b, err) => this.lost(b, err), (err) => {
      if (err !== null) this.metrics.ioErrors.inc();
      for (const l of this.stallListeners) l(err, this.blockFiles.heldBytes);
    });
    this.metrics = new CacheMetrics(opts.registry, {
      dirtyBytes: () => this.dirtyTotal,
      cleanBytes: () => this.cleanTotal,
      blocks: () => this.blockCount,
      diskFreeBytes: () => this.disk.freeBytes,
    });
    this.disk = new DiskFree({
      path: opts.dir,
      clock: this.clock,
      statfs: opts.statfs ?? defaultStatfs,
      pollMs: opts.diskFreePollMs ?? 1000,
      onChange: () => this.emitPressure(),
      onError: () => this.metrics.ioErrors.inc(),
    });
    this.unobserve = opts.config?.observe('cache', (c) => {
      const max = c.new.max_bytes;
      const dirtyMax = c.new.dirty_max_bytes;
      if (typeof max !== 'number' || typeof dirtyMax !== 'number') throw new TypeError('[cache] section without max_bytes/dirty_max_bytes');
      this.setLimits({ max_bytes: max, dirty_max_bytes: dirtyMax });
    });
  }

  // ---- CachePressureSource -------------------------------------------------------------------

  cachePressure(): CachePressure {
    this.pressure.dirtyBytes = this.dirtyTotal;
    this.pressure.diskFreeBytes = this.disk.freeBytes;
    return this.pressure;
  }

  /**
   * `listener(fileId)`: bytes written to a block the index names could not be written through to
   * its file and are gone from the cache, dirty ones included; the caller must not serve the file from
   * the cache and the store alone until its pending journal entries are committed.
   */
  onDataLost(listener: (fileId: number, err: unknown) => void): () => void {
    this.lostListeners.add(listener);
    return () => this.lostListeners.delete(listener);
  }

  /**
   * `listener(err)`: writing behind failed (a full disk); written bytes stay in memory, where reads
   * find them, and are written once the disk takes them: then `listener(null)`.
   */
  onWriteBehindStall(listener: (err: unknown, heldBytes: number) => void): () => void {
    this.stallListeners.add(listener);
    return () => this.stallListeners.delete(listener);
  }

  private lost(b: Block, err: unknown): void {
    this.metrics.ioErrors.inc();
    // Already dropped (committed, removed, truncated away): its bytes were not the cache's to lose.
    if (b.dead) return;
    this.noteChange(b.fileId);
    this.kill(b);
    this.emitPressure();
    for (const l of this.lostListeners) l(b.fileId, err);
  }

  onCachePressureChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  // ---- writes ----------------------------------------------------------------------------------

  /**
   * Checks the dirty quota for a write of [offset, offset + length) and holds the bytes it would
   * add, so the journal append that follows cannot be overtaken by another writer. Throws
   * CACHE_DIRTY_QUOTA (ENOSPC) and changes nothing when the write would pass the quota.
   */
  reserveDirty(fileId: number, offset: number, length: number): DirtyReservation {
    this.assertOpen();
    assertCount('fileId', fileId);
    this.assertRange(offset, length);
    const adds = this.notDirtyIn(fileId, offset, length);
    if (adds > 0 && this.dirtyTotal + this.reservedTotal + adds > this.dirtyMaxBytes) {
      this.metrics.dirtyQuotaRejections.inc();
      throw new AetherError('CACHE_DIRTY_QUOTA', `cache dirty quota reached: ${this.dirtyTotal} dirty + ${adds} would pass ${this.dirtyMaxBytes} bytes`, {
        errno: 'ENOSPC',
        context: { fileId, offset, length, dirtyBytes: this.dirtyTotal, reservedBytes: this.reservedTotal, dirtyMaxBytes: this.dirtyMaxBytes },
      });
    }
    this.reservedTotal += adds;
    let held = true;
    return {
      bytes: adds,
      release: () => {
        if (!held) return;
        held = false;
        this.reservedTotal -= adds;
      },
    };
  }

  /**
   * Stores `data` at `offset` as dirty, tagged with the journal seq of its entry. Bytes already
   * dirtied by a later seq are left alone, and a seq already committed lands clean, so the cache
   * stays right even if a commit overtakes the write that it covers.
   */
  async write(fileId: number, offset: number, data: Buffer, seq: number, opts: WriteOptions = {}): Promise<void> {
    assertCount('seq', seq);
    const reservation = opts.reservation ?? (opts.replay ? undefined : this.reserveDirty(fileId, offset, data.length));
    try {
      this.assertOpen();
      this.assertRange(offset, data.length);
      await this.locks.run(fileId, () => this.writeLocked(fileId, offset, data, seq));
    } finally {
      reservation?.release();
    }
  }

  private writeLocked(fileId: number, offset: number, data: Buffer, seq: number): Promise<number> {
    return this.storeLocked(
      fileId,
      offset,
      data,
      (exts, start, end) => writablePieces(exts, start, end, seq),
      () => {
        // Decided only once the bytes are on disk: a commit may have landed meanwhile.
        const state = seq <= this.committed ? CLEAN : seq;
        return () => state;
      },
    );
  }

  /**
   * Under the file's lock: writes the pieces `pick` chooses in each block, then records them with
   * the decision `decide` returns, asked only after the bytes are on disk. Returns bytes stored.
   */
  private async storeLocked(
    fileId: number,
    offset: number,
    data: Buffer,
    pick: (exts: Block['extents'], start: number, end: number) => number[],
    decide: () => (cur: number) => number,
  ): Promise<number> {
    let stored = 0;
    try {
      for (const { index, base, start, end } of blockSpans(offset, data.length, this.blockBytes)) {
        const b = this.blockFor(fileId, index, true) as Block;
        b.pins++;
        try {
          await this.ensureVerified(b);
          const pieces = pick(b.extents, start - base, end - base);
          for (let i = 0; i < pieces.length; i += 2) {
            const s = pieces[i] as number;
            const e = pieces[i + 1] as number;
            this.blockFiles.write(b, data, base + s - offset, e - s, s);
            stored += e - s;
          }
          if (b.indexed && pieces.length > 0) await this.blockFiles.flushNow(b);
          // The write-through failed: the block was dropped and its loss reported, nothing to record.
          if (b.dead) continue;
          const d = decide();
          for (let i = 0; i < pieces.length; i += 2) this.apply(b, overlay(b.extents, pieces[i] as number, pieces[i + 1] as number, d));
          if (pieces.length > 0) this.recordStale(b);
          if (b.cleanBytes > 0) this.lru.touch(b);
        } finally {
          this.unpin(b);
        }
      }
    } finally {
      this.disk.noteWritten(stored);
      this.emitPressure();
      this.evictIfNeeded();
    }
    return stored;
  }

  /** Stores data fetched from the store, only where the cache holds nothing. Returns bytes stored. */
  async putClean(fileId: number, offset: number, data: Buffer, token?: number): Promise<number> {
    this.assertOpen();
    assertCount('fileId', fileId);
    this.assertRange(offset, data.length);
    // While write-behind fails, clean data (fetched again when needed) would only pile up in memory.
    if (this.maxBytes === 0 || this.blockFiles.stalled !== null) return 0;
    return this.locks.run(fileId, async () => {
      if (token !== undefined && this.changedSince(fileId, token)) return 0;
      return this.storeLocked(fileId, offset, data, holePieces, () => (cur) => (cur === HOLE ? CLEAN : KEEP));
    });
  }

  // ---- reads -----------------------------------------------------------------------------------

  /** Reads [offset, offset + length): cached bytes (clean or dirty) and the holes left to fetch. */
  /** Reads into `into` when given (its first `length` bytes, zeroed first), else into a new buffer. */
  async read(fileId: number, offset: number, length: number, into?: Buffer): Promise<ReadResult> {
    this.assertOpen();
    assertCount('fileId', fileId);
    this.assertRange(offset, length);
    if (into && into.length < length) throw new RangeError(`cache read: ${length} bytes into a buffer of ${into.length}`);
    const token = this.changeCounter;
    return this.locks.run(fileId, async () => {
      const data = into ? into.subarray(0, length).fill(0) : Buffer.alloc(length);
      const holes: { offset: number; length: number }[] = [];
      const hole = (start: number, end: number): void => {
        const last = holes[holes.length - 1];
        if (last && last.offset + last.length === start) last.length += end - start;
        else holes.push({ offset: start, length: end - start });
      };
      for (const { index, base, start, end } of blockSpans(offset, length, this.blockBytes)) {
        const b = this.blockFor(fileId, index, false);
        if (b) await this.readBlock(b, base, start, end, data, offset, hole);
        else hole(start, end);
      }
      return { data, holes, token };
    });
  }

  private async readBlock(b: Block, base: number, pos: number, end: number, data: Buffer, offset: number, hole: (s: number, e: number) => void): Promise<void> {
    b.pins++;
    try {
      await this.ensureVerified(b);
      let at = pos;
      for (const x of b.extents) {
        const s = Math.max(base + x.start, at);
        const e = Math.min(base + x.end, end);
        if (e <= s) continue;
        if (s > at) hole(at, s);
        const got = await this.blockFiles.read(b, data, s - offset, e - s, s - base);
        if (got !== e - s) {
          throw new AetherError('CACHE_CORRUPT', `cache block ${this.blockFiles.path(b)} is shorter than its index says`, { errno: 'EIO', context: { fileId: b.fileId, index: b.index } });
        }
        at = e;
      }
      if (at < end) hole(at, end);
      if (b.cleanBytes > 0) this.lru.touch(b);
    } finally {
      this.unpin(b);
    }
  }

  // ---- file changes ----------------------------------------------------------------------------

  /** Drops everything at or past `size` (clean and dirty); a larger size changes nothing cached. */
  async truncate(fileId: number, size: number): Promise<void> {
    assertCount('size', size);
    await this.changeFile(fileId, async (file) => {
      for (const b of [...file.blocks.values()]) {
        const base = b.index * this.blockBytes;
        if (base >= size) {
          this.kill(b);
        } else if (base + this.blockBytes > size) {
          b.pins++;
          try {
            await this.ensureVerified(b);
            if (b.dead) continue;
            this.apply(b, overlay(b.extents, size - base, this.blockBytes, () => HOLE));
            // Cut the file too, so an older index can never find the dropped bytes again.
            await this.blockFiles.truncate(b, size - base);
          } finally {
            this.unpin(b);
          }
        }
      }
    });
  }

  /** Forgets a file entirely (deleted): its clean and dirty data. */
  async remove(fileId: number): Promise<void> {
    await this.changeFile(fileId, async (file) => {
      for (const b of [...file.blocks.values()]) this.kill(b);
    });
  }

  /**
   * Drops the clean data of a file changed remotely; its dirty data stays. Blocks that also hold
   * dirty data are rewritten to a new file with the dirty bytes only, so no stale clean byte is left
   * on disk for an older index to claim after a crash.
   */
  async invalidate(fileId: number): Promise<void> {
    await this.changeFile(fileId, async (file) => {
      for (const b of [...file.blocks.values()]) {
        if (b.cleanBytes === 0) continue;
        if (b.dirtyBytes === 0) this.kill(b);
        else await this.rewriteDirtyOnly(b);
      }
    });
  }

  /**
   * Runs a change of a file's contents (truncate, remove, invalidate) under its lock, after
   * recording it so that data fetched before it is not stored by `putClean`.
   */
  private async changeFile(fileId: number, fn: (file: FileEntry) => Promise<void>): Promise<void> {
    this.assertOpen();
    assertCount('fileId', fileId);
    await this.locks.run(fileId, async () => {
      const file = this.noteChange(fileId);
      if (!file) return;
      try {
        await fn(file);
      } finally {
        this.emitPressure();
      }
    });
  }

  private async rewriteDirtyOnly(b: Block): Promise<void> {
    b.pins++;
    try {
      const dirty = b.extents.filter((x) => x.seq >= 0);
      const bufs: Buffer[] = [];
      for (const x of dirty) {
        const buf = Buffer.allocUnsafe(x.end - x.start);
        if ((await this.blockFiles.read(b, buf, 0, buf.length, x.start)) !== buf.length) {
          throw new AetherError('CACHE_CORRUPT', `cache block ${this.blockFiles.path(b)} lost dirty bytes`, { errno: 'EIO' });
        }
        bufs.push(buf);
      }
      this.apply(b, overlay(b.extents, 0, this.blockBytes, (cur) => (cur === CLEAN ? HOLE : KEEP)));
      this.lru.remove(b);
      await this.blockFiles.discard(b);
      b.gen = this.nextGen++;
      for (let i = 0; i < dirty.length; i++) {
        const x = dirty[i] as { start: number; end: number };
        this.blockFiles.write(b, bufs[i] as Buffer, 0, x.end - x.start, x.start);
      }
    } finally {
      this.unpin(b);
    }
  }

  // ---- commit, eviction, clear -----------------------------------------------------------------

  /** Marks every dirty byte written with seq <= `upToSeq` clean (its journal entries are committed). */
  commit(upToSeq: number): void {
    this.assertOpen();
    if (!Number.isSafeInteger(upToSeq)) throw new TypeError(`upToSeq must be a safe integer, got ${upToSeq}`);
    if (upToSeq > this.committed) this.committed = upToSeq;
    let changed = false;
    for (const b of this.dirtyBlocks) {
      if (b.minDirtySeq > upToSeq) continue;
      this.apply(b, overlay(b.extents, 0, this.blockBytes, (cur) => (cur >= 0 && cur <= upToSeq ? CLEAN : KEEP)));
      changed = true;
      // Written data whose owner can read it back from its committed source goes: from memory if
      // it was not written behind yet, else its block file is deleted in the background.
      // So does a block whose bytes wait in memory for a disk that takes none (its write-behind
      // fails): clean, it would only pile up there.
      const held = this.blockFiles.stalled !== null && this.blockFiles.holds(b);
      if ((this.dropCommittedWrites || held) && b.dirtyBytes === 0 && b.pins === 0) this.kill(b, true);
    }
    if (!changed) return;
    this.emitPressure();
    this.evictIfNeeded();
  }

  get committedSeq(): number {
    return this.committed;
  }

  /** Drops all clean data (never dirty). Resolves once the files are gone and free space is re-measured. */
  async clear(): Promise<ClearResult> {
    this.assertOpen();
    const result: ClearResult = { freed_clean_bytes: 0, freed_blocks: 0 };
    const busy = new Set<number>();
    for (let b = this.lru.oldest; b; ) {
      const next: Block | null = b.lruNext;
      if (b.pins > 0) busy.add(b.fileId);
      else this.dropClean(b, result);
      b = next;
    }
    // Blocks in use a moment ago: wait for their file's operations, then drop them too.
    for (const fileId of busy) {
      await this.locks.run(fileId, async () => {
        for (const b of [...(this.files.get(fileId)?.blocks.values() ?? [])]) if (b.cleanBytes > 0 && b.pins === 0) this.dropClean(b, result);
      });
    }
    await this.settleBackground();
    await this.disk.refresh();
    return result;
  }

  private dropClean(b: Block, tally?: ClearResult): number {
    const freed = b.cleanBytes;
    if (tally) tally.freed_clean_bytes += freed;
    if (b.dirtyBytes === 0) {
      if (tally) tally.freed_blocks++;
      this.kill(b);
    } else {
      this.apply(b, overlay(b.extents, 0, this.blockBytes, (cur) => (cur === CLEAN ? HOLE : KEEP)));
    }
    return freed;
  }

  /** LRU eviction of clean data down to the clean quota; blocks in use are skipped until released. */
  private evictIfNeeded(): void {
    for (let b = this.lru.oldest; b && this.cleanTotal > this.maxBytes; ) {
      const next: Block | null = b.lruNext;
      if (b.pins === 0) {
        this.metrics.evictedBytes.inc(this.dropClean(b));
        this.metrics.evictions.inc();
      }
      b = next;
    }
  }

  setLimits(limits: CacheConfig): void {
    this.maxBytes = limits.max_bytes;
    this.dirtyMaxBytes = limits.dirty_max_bytes;
    this.evictIfNeeded();
  }

  // ---- status ----------------------------------------------------------------------------------

  stats(): CacheStats {
    return {
      dirty_bytes: this.dirtyTotal,
      clean_bytes: this.cleanTotal,
      reserved_dirty_bytes: this.reservedTotal,
      entries: this.blockCount,
      files: this.files.size,
      max_bytes: this.maxBytes,
      dirty_max_bytes: this.dirtyMaxBytes,
      disk_free_bytes: this.disk.freeBytes,
      block_bytes: this.blockBytes,
      committed_seq: this.committed,
    };
  }

  /** Measures free space now; the backpressure coordinator hears of any change. */
  refreshDiskFree(): Promise<number | null> {
    return this.disk.refresh();
  }

  // ---- persistence -----------------------------------------------------------------------------

  /** Writes the index of clean data now (joins a write already running, then writes again if needed). */
  async flushIndex(): Promise<void> {
    while (this.flushing) await this.flushing;
    this.flushing = this.writeIndexNow().finally(() => (this.flushing = null));
    await this.flushing;
  }

  private async writeIndexNow(): Promise<void> {
    this.indexStale = false;
    // The index must never name bytes that are still only in memory.
    await this.blockFiles.flushAll();
    // Least recently used first, so a restart keeps the eviction order.
    const blocks: Block[] = [];
    for (let b = this.lru.oldest; b; b = b.lruNext) blocks.push(b);
    const entries: IndexEntry[] = [];
    for (const b of blocks) {
      const record = b.record ?? (await this.locks.run(b.fileId, () => this.computeRecord(b)));
      if (record && !b.dead) {
        entries.push({ fileId: b.fileId, index: b.index, gen: b.gen, crc: record.crc, pieces: record.pieces });
        b.indexed = true;
      }
    }
    await writeIndex(this.opts.dir, { blockBytes: this.blockBytes, nextGen: this.nextGen, blocks: entries });
  }

  /** Under the file's lock: the clean pieces as they are on disk right now, and their CRC. */
  private async computeRecord(b: Block): Promise<Block['record']> {
    if (b.dead || b.cleanBytes === 0) return null;
    if (b.record) return b.record;
    b.pins++;
    try {
      const pieces = cleanPieces(b.extents);
      const crc = await this.blockFiles.crcOf(b, pieces);
      if (crc === null) return null;
      b.record = { pieces, crc };
      return b.record;
    } finally {
      this.unpin(b);
    }
  }

  private async load(): Promise<void> {
    await this.blockFiles.init();
    const loaded = await readIndex(this.opts.dir);
    const known = new Set<string>();
    if (loaded.kind === 'ok' && loaded.content.blockBytes === this.blockBytes) {
      this.nextGen = Math.max(this.nextGen, loaded.content.nextGen);
      for (const e of loaded.content.blocks) {
        if (this.blockFor(e.fileId, e.index, false)) continue;
        const b = this.blockFor(e.fileId, e.index, true, e.gen) as Block;
        b.verified = false;
        b.indexed = true;
        b.record = { pieces: e.pieces, crc: e.crc };
        for (let i = 0; i < e.pieces.length; i += 2) this.apply(b, overlay(b.extents, e.pieces[i] as number, e.pieces[i + 1] as number, () => CLEAN), true);
        known.add(this.blockFiles.path(b));
      }
    }
    // Files no index entry names are leftovers (dirty data from before a crash, dropped blocks):
    // the journal replay rewrites what is still pending.
    for (const f of await this.blockFiles.list()) {
      if (f.parsed) this.nextGen = Math.max(this.nextGen, f.parsed.gen + 1);
      if (!known.has(f.path)) await this.blockFiles.discardPath(f.path);
    }
    await this.disk.refresh();
    this.disk.start();
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    const ms = this.opts.indexFlushIntervalMs ?? 5000;
    if (ms <= 0 || this.closing) return;
    this.flushTimer = this.clock.setTimeout(() => {
      this.flushTimer = null;
      const run = this.indexStale ? this.flushIndex().catch(() => this.metrics.ioErrors.inc()) : Promise.resolve();
      void run.finally(() => this.scheduleFlush());
    }, ms);
    this.flushTimer.unref?.();
  }

  /** Waits for queued operations, writes the index, closes files. Later calls fail with CACHE_CLOSED. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.unobserve?.();
    this.disk.stop();
    if (this.flushTimer) this.clock.clearTimeout(this.flushTimer);
    this.flushTimer = null;
    await this.locks.idle();
    this.closed = true;
    this.blockFiles.retryNow();
    try {
      await this.flushIndex();
    } finally {
      // Failing write-behind (a full disk): the held bytes are in the journal; the files close all the same.
      await this.settleBackground();
      await this.blockFiles.closeAll();
      this.listeners.clear();
    }
  }

  // ---- internals -------------------------------------------------------------------------------

  private blockFor(fileId: number, index: number, create: boolean, gen?: number): Block | undefined {
    let file = this.files.get(fileId);
    const found = file?.blocks.get(index);
    if (found || !create) return found;
    if (!file) this.files.set(fileId, (file = { blocks: new Map(), changedAt: 0 }));
    const b = new Block(fileId, index, gen ?? this.nextGen++);
    file.blocks.set(index, b);
    this.blockCount++;
    return b;
  }

  /** Installs an overlay result on a block and keeps every total, set and list in step with it. */
  private apply(b: Block, r: OverlayResult, loading = false): void {
    b.extents = r.extents;
    b.dirtyBytes += r.dirtyDelta;
    b.cleanBytes += r.cleanDelta;
    this.dirtyTotal += r.dirtyDelta;
    this.cleanTotal += r.cleanDelta;
    if (r.dirtyDelta !== 0 || b.dirtyBytes > 0) b.minDirtySeq = minDirtySeq(b.extents);
    if (b.dirtyBytes > 0) this.dirtyBlocks.add(b);
    else this.dirtyBlocks.delete(b);
    if (b.cleanBytes === 0) this.lru.remove(b);
    else if (!b.inLru) this.lru.touch(b);
    if (!loading && (r.cleanDelta !== 0 || r.dirtyDelta !== 0)) this.recordStale(b);
  }

  /** The block's clean bytes or their layout changed: its index entry must be recomputed. */
  private recordStale(b: Block): void {
    b.record = null;
    this.indexStale = true;
  }

  /** Releases a block; one left empty is deleted, and eviction skipped while it was in use happens now. */
  private unpin(b: Block): void {
    b.pins--;
    if (b.pins > 0) return;
    if (b.extents.length === 0 && !b.dead) this.kill(b);
    else if (this.cleanTotal > this.maxBytes) this.evictIfNeeded();
  }

  /** Removes a block and its data (clean and dirty) now; the file is deleted in the background. */
  /**
   * `paced`: its file is deleted in turn with other such deletions (BlockFiles.discard), for
   * blocks dropped in bulk whose file no index names (committed written data). A block dropped to
   * destroy its bytes (remove, truncate, invalidate) has its file deleted at once: an older index
   * may name it.
   */
  private kill(b: Block, paced = false): void {
    if (b.dead) return;
    b.dead = true;
    this.dirtyTotal -= b.dirtyBytes;
    this.cleanTotal -= b.cleanBytes;
    b.dirtyBytes = 0;
    b.cleanBytes = 0;
    b.extents = [];
    this.dirtyBlocks.delete(b);
    this.lru.remove(b);
    this.blockCount--;
    this.indexStale = true;
    const file = this.files.get(b.fileId);
    if (file?.blocks.get(b.index) === b) {
      file.blocks.delete(b.index);
      if (file.blocks.size === 0) {
        this.files.delete(b.fileId);
        this.forgottenChangedAt = Math.max(this.forgottenChangedAt, file.changedAt);
      }
    }
    const p = this.blockFiles.discard(b, paced).catch(() => this.metrics.ioErrors.inc());
    this.background.add(p);
    void p.finally(() => this.background.delete(p));
  }

  /**
   * After a restart a block's bytes are checked against the CRC the index recorded, before anything
   * reads or changes them. A mismatch (bytes rewritten or lost since the index was written) drops
   * the block's clean data: the cache never serves bytes its index cannot vouch for.
   */
  private async ensureVerified(b: Block): Promise<void> {
    if (b.verified) return;
    const record = b.record;
    const crc = record ? await this.blockFiles.crcOf(b, record.pieces) : null;
    b.verified = true;
    if (record && crc === record.crc) return;
    this.metrics.verifyFailures.inc();
    this.apply(b, overlay(b.extents, 0, this.blockBytes, () => HOLE));
    await this.blockFiles.discard(b);
    b.gen = this.nextGen++;
  }

  private async settleBackground(): Promise<void> {
    while (this.background.size > 0) await Promise.all([...this.background]);
  }

  /** Records that a file changed, so data fetched before the change is not stored by `putClean`. */
  private noteChange(fileId: number): FileEntry | undefined {
    const file = this.files.get(fileId);
    const at = ++this.changeCounter;
    if (file) file.changedAt = at;
    else this.forgottenChangedAt = at;
    return file;
  }

  private changedSince(fileId: number, token: number): boolean {
    const file = this.files.get(fileId);
    return (file ? file.changedAt : this.forgottenChangedAt) > token;
  }

  private notDirtyIn(fileId: number, offset: number, length: number): number {
    let adds = 0;
    for (const { index, base, start, end } of blockSpans(offset, length, this.blockBytes)) {
      const b = this.blockFor(fileId, index, false);
      adds += b ? notDirtyBytes(b.extents, start - base, end - base) : end - start;
    }
    return adds;
  }

  private emitPressure(): void {
    for (const l of this.listeners) l();
  }

  private assertOpen(): void {
    if (this.closed) throw new AetherError('CACHE_CLOSED', 'the cache is closed', { errno: 'EIO' });
  }

  private assertRange(offset: number, length: number): void {
    assertCount('offset', offset);
    assertCount('length', length);
    if (!Number.isSafeInteger(offset + length)) throw new TypeError(`offset + length passes 2^53: ${offset} + ${length}`);
  }
}
