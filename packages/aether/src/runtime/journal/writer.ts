import assert from 'node:assert/strict';
import { join } from 'node:path';
import { AetherError } from '../../errors.js';
import type { JournalFile, JournalFs } from './fs-layer.js';
import { Fifo } from './fifo.js';
import { GroupRun } from './group-run.js';
import type { JournalMetrics } from './metrics.js';
import type { OutsideSync } from './outside-sync.js';
import { decodeRecord } from './record.js';
import { encodeSegmentHeader, Segment, SEGMENT_HEADER_BYTES, SegmentList } from './segment.js';

/** One writev takes at most this many records and bytes, so the event loop is never held long. */
export const WRITE_BATCH_RECORDS_MAX = 1024;
export const WRITE_BATCH_BYTES_MAX = 1024 * 1024;
/** After this many bytes in one go, the pump yields to the event loop before writing more. */
const PUMP_BYTES_PER_TURN = 4 * WRITE_BATCH_BYTES_MAX;

/**
 * Reserves disk blocks for a file's bytes [offset, offset + length) without changing its size
 * (fallocate with FALLOC_FL_KEEP_SIZE); returns 0 or -errno.
 */
export type ReserveSpace = (fd: number, offset: number, length: number) => number;
/**
 * Blocks are reserved this far ahead of the records (at most a segment's size, at least 64 KiB):
 * one fallocate per half window, and what a nearly full disk must still have for changes. Over
 * 1 MiB, so that the record of a 1 MiB FUSE write fits a spare's first window.
 */
export const RESERVE_WINDOW_BYTES = 2 * 1024 * 1024;
/**
 * `hasRoom` keeps this much reserved beyond the record it is asked about, for records appended
 * without asking (an unlinked file's forget record goes out with its unlink).
 */
export const RESERVE_MARGIN_BYTES = 64 * 1024;
/**
 * The next segment's file, made and reserved ahead, so that rolling to it needs no new block.
 * Each spare has a name of its own: one made while the last is still being renamed in never
 * opens the same file.
 */
export function spareSegmentName(n: number): string {
  return `next-segment.${n}.spare`;
}

/** A spare's name, also the one builds before the numbered names used (`next-segment.spare`). */
export function isSpareSegmentName(name: string): boolean {
  return /^next-segment(\.\d+)?\.spare$/.test(name);
}
const ENOSPC = -28;
const EDQUOT = -122;

interface Spare {
  file: JournalFile;
  path: string;
  reservedEnd: number;
}

interface Queued {
  seq: number;
  segment: Segment;
  offset: number;
  /** A record goes to disk as its header followed by its payload (never copied into one frame). */
  header: Buffer;
  payload: Buffer;
  bytes: number;
}

/** What one successful fdatasync batch covered. */
export interface SyncPoint {
  /** Every record up to this sequence number is durable. */
  seq: number;
  /** Record bytes written in this session, all durable. */
  bytesTotal: number;
}

export interface WriterEvents {
  /** Records up to `seq` are in the OS (in order, so every record before them is too). */
  written(seq: number): void;
  /** A write or a segment creation failed; nothing more will be written. */
  failed(err: AetherError, writtenSeq: number): void;
  /** A segment file could not be handed to the outside sync: it must answer no more. */
  outsideLost(): void;
}

/**
 * Puts records into segment files: places each record (segment and offset) when it is
 * appended, writes queued records in batches with one writev each, rolls to a new segment
 * when the current one is full (creating it, then fsyncing the directory before any record
 * goes in), and runs the fdatasync batches (one at a time, queued callers sharing the next).
 */
export class SegmentWriter {
  private readonly queue = new Fifo<Queued>();
  private pumpQueued = false;
  private creating: Promise<void> | null = null;
  private active: Segment | null = null;
  private failure: AetherError | null = null;
  private readonly fsyncs: GroupRun<SyncPoint>;
  /** The fdatasync batch running now and the last sequence number it covers. */
  private inFlight: { covers: number; done: Promise<SyncPoint> } | null = null;
  private writtenSeqValue: number;
  private writtenBytes = 0;
  private durableSeqValue: number;
  private durableBytes = 0;
  private outside: OutsideSync | null = null;
  /** The next segment's file, reserved, once made; and the making of it. */
  private spare: Spare | null = null;
  private spares = 0;
  /** Segments rolled to and not yet made, with the spare each takes (its reservation is theirs at once). */
  private readonly sparesTaken = new Map<Segment, Spare>();
  /** A reservation failed for want of space: until one works, `hasRoom` answers from what is reserved. */
  private full = false;
  private readonly window: number;

  /** `reserve`: without it (or on a file system that cannot) nothing is reserved, `hasRoom` is always true. */
  constructor(
    private readonly fs: JournalFs,
    private readonly dir: string,
    private readonly segmentBytes: number,
    readonly segments: SegmentList,
    lastSeq: number,
    private readonly metrics: JournalMetrics,
    private readonly events: WriterEvents,
    private reserve?: ReserveSpace,
  ) {
    this.window = Math.min(RESERVE_WINDOW_BYTES, Math.max(segmentBytes, 64 * 1024));
    this.prepareSpare();
    this.writtenSeqValue = lastSeq;
    this.durableSeqValue = lastSeq;
    this.fsyncs = new GroupRun(() => {
      const done = this.syncDirty();
      const run = { covers: this.writtenSeqValue, done };
      this.inFlight = run;
      const clear = (): void => {
        if (this.inFlight === run) this.inFlight = null;
      };
      done.then(clear, clear);
      return done;
    });
  }

  get writtenSeq(): number {
    return this.writtenSeqValue;
  }

  get durableSeq(): number {
    return this.durableSeqValue;
  }

  /** Record bytes written (to the OS) in this session. */
  get writtenBytesTotal(): number {
    return this.writtenBytes;
  }

  /** Record bytes made durable in this session. */
  get durableBytesTotal(): number {
    return this.durableBytes;
  }

  get failed(): AetherError | null {
    return this.failure;
  }

  /**
   * True when a record of `bytes` can be written without the disk giving a block it may not have:
   * the blocks it goes into are reserved (or nothing is, on a file system that cannot). Asked
   * before a change is made, so that a full disk refuses the change, never its record halfway.
   */
  hasRoom(bytes: number): boolean {
    if (!this.reserve || this.failure) return true;
    const seg = this.active;
    if (!seg || (seg.lastSeq >= seg.firstSeq && seg.sizeBytes + bytes > this.segmentBytes)) {
      // It starts a segment: the spare, made ahead, takes it.
      this.prepareSpare();
      if (!this.reserve) return true;
      const end = SEGMENT_HEADER_BYTES + bytes + RESERVE_MARGIN_BYTES;
      return this.spare !== null && (end <= this.spare.reservedEnd || this.extend(this.spare, end));
    }
    const end = seg.sizeBytes + bytes + RESERVE_MARGIN_BYTES;
    if (end <= seg.reservedEnd) return true;
    if (!seg.file) {
      // Being made from a spare: more is reserved through the spare's descriptor (the same file
      // before and after its rename). Made without one: its blocks come once it is.
      const spare = this.sparesTaken.get(seg);
      if (!spare) return !this.full;
      const ok = this.extend(spare, end);
      seg.reservedEnd = spare.reservedEnd;
      return ok;
    }
    return this.extend(seg, end);
  }

  /** Reserves blocks of the file up to `end` at least (a window further when it can); false when the disk is full. */
  private extend(target: { file: JournalFile | null; reservedEnd: number }, end: number): boolean {
    const fd = target.file?.fd;
    if (fd === undefined || !this.reserve) return true;
    const from = target.reservedEnd;
    const to = Math.max(end, Math.min(from + this.window, Math.max(this.segmentBytes, end)));
    // Reserved to the segment's end already: nothing to ask (a zero length is EINVAL).
    if (to <= from) return true;
    const r = this.reserve(fd, from, to - from);
    if (r === 0) {
      target.reservedEnd = to;
      this.full = false;
      return true;
    }
    if (r === ENOSPC || r === EDQUOT) {
      this.full = true;
      return false;
    }
    // The file system cannot reserve (EOPNOTSUPP, ...): write as before, without.
    this.reserve = undefined;
    return true;
  }

  /**
   * Makes the spare segment file, now (a synchronous open, once a segment), and reserves its first
   * window; a spare the disk had no room for stays, reserved as far as it could be, and is asked
   * again by `hasRoom`.
   */
  private prepareSpare(): void {
    if (!this.reserve || this.spare || this.failure) return;
    if (!this.fs.openSync) {
      // Without a synchronous open the spare could not be made when `hasRoom` needs it.
      this.reserve = undefined;
      return;
    }
    const path = join(this.dir, spareSegmentName(++this.spares));
    try {
      this.spare = { file: this.fs.openSync(path, 'wx'), path, reservedEnd: 0 };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOSPC' || code === 'EDQUOT') this.full = true;
      else this.reserve = undefined;
      return;
    }
    this.extend(this.spare, SEGMENT_HEADER_BYTES + this.window + RESERVE_MARGIN_BYTES);
  }
  /** Places the record in the log (rolling to a new segment when this one is full) and queues it; returns its offset. */
  place(seq: number, header: Buffer, payload: Buffer): number {
    assert.equal(this.failure, null);
    const bytes = header.length + payload.length;
    let seg = this.active;
    if (!seg || (seg.lastSeq >= seg.firstSeq && seg.sizeBytes + bytes > this.segmentBytes)) seg = this.roll(seq);
    const offset = seg.sizeBytes;
    seg.sizeBytes += bytes;
    seg.lastSeq = seq;
    this.reserveAhead(seg);
    this.queue.push({ seq, segment: seg, offset, header, payload, bytes });
    if (!this.pumpQueued) {
      // Appends made in the same turn of the event loop go out together in one writev.
      this.pumpQueued = true;
      queueMicrotask(() => this.pump());
    }
    return offset;
  }

  /**
   * Makes every written record durable; concurrent callers share fdatasync batches. With
   * `throughSeq`, a batch already running that covers it is joined instead of queueing the next
   * one (an `fsync(2)` that lands while the interval's fdatasync runs need not wait for two).
   */
  sync(throughSeq?: number): Promise<SyncPoint> {
    if (throughSeq !== undefined && this.inFlight && this.inFlight.covers >= throughSeq) return this.inFlight.done;
    return this.fsyncs.run();
  }

  /** Hands every segment file written from now on (and those open now) to `outside` as well. */
  shareFiles(outside: OutsideSync): void {
    this.outside = outside;
    for (const seg of this.segments.all) if (seg.file) this.share(seg.file);
  }

  private share(file: JournalFile): void {
    if (this.outside && (file.fd === undefined || !this.outside.add(file.fd))) this.events.outsideLost();
  }

  /** Closes a segment file, taking it back from the outside sync first. */
  private closeFile(file: JournalFile): Promise<void> {
    if (file.fd !== undefined) this.outside?.remove(file.fd);
    return file.close();
  }

  /** Resolves once no write, segment creation or fdatasync is in progress. */
  async idle(): Promise<void> {
    while (this.creating || this.pumpQueued || this.queue.size > 0) {
      if (this.failure) break;
      if (this.creating) await this.creating;
      else await new Promise((r) => setImmediate(r));
    }
    await this.fsyncs.idle();
  }

  /** Closes every open segment file (after the caller's last flush) and removes the spare. */
  async close(): Promise<void> {
    await this.idle();
    const spares = [...(this.spare ? [this.spare] : []), ...this.sparesTaken.values()];
    this.spare = null;
    this.sparesTaken.clear();
    for (const spare of spares) {
      await spare.file.close().catch(() => undefined);
      await this.fs.unlink(spare.path).catch(() => undefined);
    }
    for (const seg of this.segments.all) {
      const file = seg.file;
      seg.file = null;
      if (file) await this.closeFile(file);
    }
  }

  /** Closes the files of settled segments (retired, all bytes synced). */
  private async closeSettled(): Promise<void> {
    for (const seg of this.segments.all) {
      if (seg.file && seg.settled) {
        const file = seg.file;
        seg.file = null;
        // The bytes are durable already; a failing close(2) changes nothing about them.
        await this.closeFile(file).catch(() => undefined);
      }
    }
  }

  private roll(firstSeq: number): Segment {
    if (this.active) this.active.retired = true;
    const seg = new Segment(firstSeq, { lastSeq: firstSeq - 1, sizeBytes: SEGMENT_HEADER_BYTES, onDisk: false });
    this.segments.push(seg);
    this.active = seg;
    // The spare is this segment's from now: `hasRoom` counts its reservation while it is made.
    const spare = this.spare;
    this.spare = null;
    if (spare) {
      seg.reservedEnd = spare.reservedEnd;
      this.sparesTaken.set(seg, spare);
    }
    return seg;
  }

  /** Reserves the active segment's next window once its records are half way through the last one. */
  private reserveAhead(seg: Segment): void {
    if (this.reserve && seg.file && !this.full && seg.sizeBytes > seg.reservedEnd - this.window / 2) this.extend(seg, seg.sizeBytes);
  }

  private pump(): void {
    this.pumpQueued = false;
    let bytesThisTurn = 0;
    for (let first = this.queue.at(0); first && !this.failure && !this.creating; first = this.queue.at(0)) {
      const seg = first.segment;
      if (!seg.file) {
        this.create(seg);
        return;
      }
      const frames: Buffer[] = [];
      let records = 0;
      let bytes = 0;
      let last = first;
      for (let q: Queued | undefined = first; q && records < WRITE_BATCH_RECORDS_MAX; q = this.queue.at(records)) {
        if (q.segment !== seg || (records > 0 && bytes + q.bytes > WRITE_BATCH_BYTES_MAX)) break;
        frames.push(q.header);
        if (q.payload.length > 0) frames.push(q.payload);
        records++;
        bytes += q.bytes;
        last = q;
      }
      // Synchronously, whatever the size: an append resolves once its record is in the OS, and a
      // thread-pool round trip per 128 KiB FUSE write cost a 256 MiB write 25% (FUSE.md).
      try {
        seg.file.writevSync(frames, first.offset);
      } catch (err) {
        this.fail('JOURNAL_WRITE_FAILED', `journal write to ${seg.name} failed: ${(err as Error).message}`, err);
        return;
      }
      this.wrote(seg, first.offset, records, bytes, last.seq);
      bytesThisTurn += bytes;
      if (bytesThisTurn >= PUMP_BYTES_PER_TURN && this.queue.size > 0) {
        // Long bursts yield so that reads, timers and fsync completions are not starved.
        this.pumpQueued = true;
        setImmediate(() => this.pump());
        return;
      }
    }
  }

  /** Records a batch of `count` queued records as written (in order, so every earlier one is too). */
  private wrote(seg: Segment, offset: number, count: number, bytes: number, lastSeq: number): void {
    this.queue.drop(count);
    seg.writtenBytes = offset + bytes;
    this.writtenBytes += bytes;
    this.writtenSeqValue = lastSeq;
    this.events.written(lastSeq);
  }

  /** Creates the segment file with its header and makes its name durable before any record goes in. */
  private create(seg: Segment): void {
    const path = join(this.dir, seg.name);
    // Taken out of sparesTaken only once made: meanwhile `hasRoom` reserves more through its descriptor.
    const spare = this.sparesTaken.get(seg);
    this.creating = (async () => {
      // The spare's blocks are reserved already: renaming it takes none from a full disk.
      const file = spare ? spare.file : await this.fs.open(path, 'wx');
      try {
        if (spare) await this.fs.rename(spare.path, path);
        file.writevSync([encodeSegmentHeader(seg.firstSeq)], 0);
        await this.fs.syncDir(this.dir);
      } catch (err) {
        this.sparesTaken.delete(seg);
        await file.close().catch(() => undefined);
        // A spare the rename did not take stays under its own name: gone with it.
        if (spare) await this.fs.unlink(spare.path).catch(() => undefined);
        throw err;
      }
      this.sparesTaken.delete(seg);
      if (this.failure) {
        // Another write failed meanwhile: the writer is stopped and this segment was forgotten.
        await file.close();
        return;
      }
      seg.file = file;
      seg.writtenBytes = SEGMENT_HEADER_BYTES;
      // Before any record goes in: an fsync(2) answered outside must cover every record answered.
      this.share(file);
      this.reserveAhead(seg);
    })().then(
      () => {
        this.creating = null;
        this.prepareSpare();
        this.pump();
      },
      (err: unknown) => {
        this.creating = null;
        this.fail('JOURNAL_WRITE_FAILED', `cannot create journal segment ${path}: ${(err as Error).message}`, err);
      },
    );
  }

  /**
   * Before an fdatasync retried after a failure: the bytes since the last successful one are read
   * back from the page cache, checked record by record, and written again, so that the retry
   * writes them back instead of succeeding over pages the failed one dropped. When they no longer
   * read back whole, they are lost to the disk: the writer stops for good (as after a failed write).
   */
  private async rewrite(seg: Segment): Promise<void> {
    const file = seg.file as JournalFile;
    const from = seg.suspectFrom as number;
    const to = seg.writtenBytes;
    const buf = Buffer.alloc(to - from);
    const bad = (why: string): never => {
      this.fail('JOURNAL_FSYNC_FAILED', `journal fdatasync of ${seg.name} failed and its bytes ${from}-${to} no longer read back whole (${why}): records answered before may be lost`, null);
      throw this.failure;
    };
    if ((await file.read(buf, 0, buf.length, from)) !== buf.length) bad('short read');
    let at = 0;
    if (from < SEGMENT_HEADER_BYTES) {
      if (!buf.subarray(0, SEGMENT_HEADER_BYTES - from).equals(encodeSegmentHeader(seg.firstSeq).subarray(from))) bad('segment header');
      at = SEGMENT_HEADER_BYTES - from;
    }
    while (at < buf.length) {
      const r = decodeRecord(buf, at, buf.length);
      if (r.kind !== 'record') bad(r.kind === 'bad' ? r.reason : 'cut record');
      else at += r.bytes;
    }
    file.writevSync([buf], from);
    seg.suspectFrom = null;
  }

  /**
   * A failed write leaves a partial record at the end of the file, after which nothing may be
   * written (recovery would cut it, and everything behind it). So the writer stops for good:
   * queued records are dropped and their appends rejected; reopening the journal cuts the tail.
   */
  private fail(code: 'JOURNAL_WRITE_FAILED' | 'JOURNAL_FSYNC_FAILED', message: string, cause: unknown): void {
    const errno = (cause as NodeJS.ErrnoException | null)?.code === 'ENOSPC' ? 'ENOSPC' : 'EIO';
    this.failure = new AetherError(code, message, { errno, cause, context: { writtenSeq: this.writtenSeqValue } });
    this.queue.clear();
    // Forget the placements that never reached the file.
    for (const seg of [...this.segments.all]) {
      if (seg.lastSeq > this.writtenSeqValue) seg.lastSeq = Math.max(seg.firstSeq - 1, this.writtenSeqValue);
      seg.sizeBytes = seg.writtenBytes;
      if (seg.writtenBytes === 0) this.segments.remove(seg);
    }
    this.active = null;
    this.events.failed(this.failure, this.writtenSeqValue);
  }

  /** One fdatasync batch over every segment with unsynced bytes. */
  private async syncDirty(): Promise<SyncPoint> {
    // Bytes lost to the disk stay lost: no later fdatasync may report anything durable.
    if (this.failure?.code === 'JOURNAL_FSYNC_FAILED') throw this.failure;
    const point: SyncPoint = { seq: this.writtenSeqValue, bytesTotal: this.writtenBytes };
    const dirty = this.segments.all.filter((s) => s.dirty).map((s) => ({ seg: s, upTo: s.writtenBytes }));
    if (dirty.length > 0) {
      const started = process.hrtime.bigint();
      const seconds = (): number => Number(process.hrtime.bigint() - started) / 1e9;
      let syncing: Segment | undefined;
      try {
        for (const d of dirty) {
          syncing = d.seg;
          if (d.seg.suspectFrom !== null) await this.rewrite(d.seg);
          await (d.seg.file as NonNullable<Segment['file']>).datasync();
        }
      } catch (err) {
        this.metrics.fsynced('error', seconds(), 0);
        if (this.failure) throw this.failure;
        if (syncing) syncing.suspectFrom = Math.min(syncing.suspectFrom ?? syncing.syncedBytes, syncing.syncedBytes);
        throw new AetherError('JOURNAL_FSYNC_FAILED', `journal fdatasync failed: ${(err as Error).message}`, {
          errno: 'EIO',
          cause: err,
          context: { throughSeq: point.seq },
        });
      }
      this.metrics.fsynced('success', seconds(), point.bytesTotal - this.durableBytes);
      for (const d of dirty) d.seg.syncedBytes = Math.max(d.seg.syncedBytes, d.upTo);
    }
    this.durableSeqValue = Math.max(this.durableSeqValue, point.seq);
    this.durableBytes = Math.max(this.durableBytes, point.bytesTotal);
    await this.closeSettled();
    return point;
  }
}

