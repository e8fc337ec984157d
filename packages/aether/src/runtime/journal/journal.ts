import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { Registry } from 'prom-client';
import { AetherError } from '../../errors.js';
import { systemClock, type Clock, type TimerHandle } from '../infra/clock.js';
import type { JournalPending, JournalPendingSource } from '../infra/pending.js';
import { CHECKPOINT_TMP_FILE, CheckpointWriter } from './checkpoint.js';
import { nodeJournalFs, type JournalFile, type JournalFs } from './fs-layer.js';
import { JournalMetrics } from './metrics.js';
import type { PendingIndex } from './pending-index.js';
import { RecordStream } from './reader.js';
import { encodeRecordHeader, FrameArena, RECORD_HEADER_BYTES, RECORD_PAYLOAD_BYTES_MAX } from './record.js';
import type { OutsideSync } from './outside-sync.js';
import { recoverJournal, type RecoveryReport } from './recovery.js';
import { Segment, SegmentList } from './segment.js';
import { DEFAULT_RETRY, SyncController, type RetrySettings, type SyncSettings } from './sync.js';
import { SeqWaiters } from './waiters.js';
import { isSpareSegmentName, SegmentWriter, type ReserveSpace } from './writer.js';

/** The smallest segment size, as in the config schema (`journal_segment_bytes`). */
export const SEGMENT_BYTES_MIN = 4096;

export interface JournalOptions {
  /** The journal directory (`<state_dir>/journal`); created when missing. */
  dir: string;
  sync: SyncSettings;
  segmentBytes: number;
  clock?: Clock;
  fs?: JournalFs;
  /** Where the journal's metrics are registered; a private registry when absent. */
  registry?: Registry;
  retry?: RetrySettings;
  /** Reserves the blocks records go into ahead (see `hasRoom`); without it nothing is reserved. */
  reserve?: ReserveSpace;
}

/** Where a run of pending entries lies in one segment file: bytes [offset, endOffset) hold firstSeq..lastSeq. */
export interface JournalSpan {
  path: string;
  offset: number;
  endOffset: number;
  firstSeq: number;
  lastSeq: number;
}

export interface JournalEntry {
  seq: number;
  timestampMs: number;
  type: number;
  payload: Buffer;
}

/**
 * Aether's write-ahead journal. `append` numbers and frames a record and resolves per the sync
 * policy: under `immediate` once its bytes are fsynced (concurrent appends share one fsync),
 * under `interval` and `manual` once they are written to the OS. `commit` moves the watermark
 * of entries committed downstream; `entries` reads the rest back in order, after a restart too.
 */
export class Journal implements JournalPendingSource {
  readonly recovery: RecoveryReport;
  private readonly fs: JournalFs;
  private readonly clock: Clock;
  private readonly segments: SegmentList;
  private readonly index: PendingIndex;
  private readonly writer: SegmentWriter;
  private readonly controller: SyncController;
  private readonly checkpoint: CheckpointWriter;
  private readonly metrics: JournalMetrics;
  private readonly writtenWaiters = new SeqWaiters();
  private readonly durableWaiters = new SeqWaiters();
  private readonly listeners = new Set<() => void>();
  private readonly arena = new FrameArena();
  private lastAppended: number;
  private committed: number;
  /** Record bytes appended in this session (the writer counts written and durable ones). */
  private appendedBytes = 0;
  private closing: Promise<void> | null = null;
  private commitBarrier: ((seq: number) => Promise<void> | null) | undefined;
  private readonly retry: RetrySettings;
  /** A group fsync retried after a failure (`immediate`), and the backoff before the next. */
  private groupRetry: TimerHandle | null = null;
  private groupRetryMs: number;
  private releasing: Promise<void> = Promise.resolve();
  private outside: OutsideSync | null = null;
  /** A segment file could not be handed to the outside sync: it answers no more. */
  private outsideLost = false;

  static async open(opts: JournalOptions): Promise<Journal> {
    assert.ok(Number.isSafeInteger(opts.segmentBytes) && opts.segmentBytes >= SEGMENT_BYTES_MIN, `segmentBytes must be an integer >= ${SEGMENT_BYTES_MIN}`);
    const fs = opts.fs ?? nodeJournalFs;
    if (await fs.mkdirp(opts.dir)) await fs.syncDir(dirname(opts.dir));
    await fs.unlink(join(opts.dir, CHECKPOINT_TMP_FILE));
    for (const name of await fs.readdir(opts.dir)) if (isSpareSegmentName(name)) await fs.unlink(join(opts.dir, name));
    const { scan, report } = await recoverJournal(fs, opts.dir);
    const segments = new SegmentList();
    for (const s of scan.segments) segments.push(new Segment(s.firstSeq, { lastSeq: s.lastSeq, sizeBytes: s.validBytes, onDisk: true }));
    return new Journal(opts, fs, segments, scan.index, report, scan.durableSeq);
  }

  private constructor(
    private readonly opts: JournalOptions,
    fs: JournalFs,
    segments: SegmentList,
    index: PendingIndex,
    report: RecoveryReport,
    durableSeqOnDisk: number,
  ) {
    this.fs = fs;
    this.clock = opts.clock ?? systemClock;
    this.recovery = report;
    this.segments = segments;
    this.index = index;
    this.committed = report.committedSeq;
    this.lastAppended = Math.max(report.lastSeq, report.committedSeq);
    assert.equal(index.nextSeq, this.lastAppended + 1);
    this.metrics = new JournalMetrics(opts.registry ?? new Registry(), {
      pending: () => this.pending(),
      unsyncedBytes: () => this.unsyncedBytes,
      segmentCount: () => this.segments.length,
      nowMs: () => this.clock.now(),
    });
    this.writer = new SegmentWriter(fs, opts.dir, opts.segmentBytes, segments, this.lastAppended, this.metrics, {
      written: (seq) => this.onWritten(seq),
      failed: (err, writtenSeq) => this.onWriteFailed(err, writtenSeq),
      outsideLost: () => {
        this.outsideLost = true;
        this.allowOutside();
      },
    }, opts.reserve);
    this.checkpoint = new CheckpointWriter(fs, opts.dir, { committedSeq: report.committedSeq, durableSeq: durableSeqOnDisk }, () => ({
      committedSeq: this.committed,
      durableSeq: this.writer.durableSeq,
    }));
    this.retry = opts.retry ?? DEFAULT_RETRY;
    this.groupRetryMs = this.retry.delayMs;
    this.controller = new SyncController(opts.sync, { unsyncedBytes: () => this.unsyncedBytes, flushAll: () => this.flushAll() }, this.clock, this.metrics, this.retry);
  }

  /** Sequence number of the last appended entry. */
  get lastSeq(): number {
    return this.lastAppended;
  }

  get committedSeq(): number {
    return this.committed;
  }

  /** Every entry up to this one was covered by a successful fdatasync in this session (or recovered). */
  get durableSeq(): number {
    return this.writer.durableSeq;
  }

  /** Record bytes appended and not yet made durable. */
  get unsyncedBytes(): number {
    return this.appendedBytes - this.writer.durableBytesTotal;
  }

  /**
   * False when the disk has no room for a record of `payloadBytes` (and a little more): the blocks
   * records go into are reserved ahead, so a full disk refuses the change before it is made, and
   * the journal goes on once there is room again. Always true without `reserve`.
   */
  hasRoom(payloadBytes: number): boolean {
    return this.writer.hasRoom(RECORD_HEADER_BYTES + payloadBytes);
  }

  /** Why the journal takes no more records (a write or a segment creation failed), or null. */
  get failed(): AetherError | null {
    return this.writer.failed;
  }

  get syncSettings(): Readonly<SyncSettings> {
    return this.controller.settings;
  }

  /**
   * Appends one record; resolves with its sequence number once it is as safe as the policy
   * promises. The payload is copied, so the caller may reuse its buffer at once; with `owned` it
   * is written as it is (one copy and fresh memory less per append), and must never change.
   */
  append(type: number, payload: Buffer, opts?: { owned?: boolean }): Promise<number> {
    if (this.closing) return Promise.reject(new AetherError('JOURNAL_CLOSED', 'the journal is closed'));
    const failure = this.writer.failed;
    if (failure) return Promise.reject(failure);
    if (payload.length > RECORD_PAYLOAD_BYTES_MAX) {
      return Promise.reject(new AetherError('JOURNAL_RECORD_TOO_LARGE', `a journal record holds at most ${RECORD_PAYLOAD_BYTES_MAX} bytes, got ${payload.length}`, { errno: 'EFBIG' }));
    }
    const seq = this.lastAppended + 1;
    const timestampMs = this.clock.now();
    const header = encodeRecordHeader(seq, timestampMs, type, this.writer.durableSeq, payload, this.arena);
    let data = payload;
    if (!opts?.owned) payload.copy((data = this.arena.alloc(payload.length)));
    this.lastAppended = seq;
    const offset = this.writer.place(seq, header, data);
    const bytes = header.length + payload.length;
    this.index.push(seq, bytes, timestampMs, offset);
    this.appendedBytes += bytes;
    this.metrics.appended();
    const done = this.controller.settings.policy === 'immediate' ? this.durableWaiters.wait(seq) : this.writtenWaiters.wait(seq);
    this.controller.onAppend();
    this.notifyPending();
    return done;
  }

  /**
   * An explicit flush (reason `manual`): resolves once everything appended before it is durable.
   * Once a write has failed it rejects with that failure, every time: records appended before it
   * but never written are gone, and under `interval` and `manual` their appends may already have
   * been answered, so no flush (an `fsync(2)`) may report them durable.
   */
  flush(): Promise<void> {
    if (this.closing) return Promise.reject(new AetherError('JOURNAL_CLOSED', 'the journal is closed'));
    const failure = this.writer.failed;
    if (failure) return Promise.reject(failure);
    return this.controller.flush('manual');
  }

  /**
   * Marks every entry up to `seq` committed downstream. The pending figures drop at once; the
   * promise resolves once the watermark is durable, and fully committed segments are released.
   */
  commit(seq: number): Promise<void> {
    assert.ok(Number.isSafeInteger(seq) && seq >= 0, `commit needs a sequence number, got ${seq}`);
    assert.ok(seq <= this.lastAppended, `cannot commit ${seq}: the last appended entry is ${this.lastAppended}`);
    const held = this.commitBarrier?.(seq);
    return held ? held.then(() => this.commitNow(seq)) : this.commitNow(seq);
  }

  /**
   * Commits of entries up to `seq` first wait for `barrier(seq)`: work the owner of the entries
   * still does for them (the Vfs's cache updates, which run behind its replies).
   */
  holdCommits(barrier: (seq: number) => Promise<void> | null): void {
    this.commitBarrier = barrier;
  }

  private commitNow(seq: number): Promise<void> {
    if (this.closing) return Promise.reject(new AetherError('JOURNAL_CLOSED', 'the journal is closed'));
    if (seq > this.committed) {
      this.committed = seq;
      this.index.dropThrough(seq);
      this.notifyPending();
    }
    return this.checkpoint.persist().then(() => this.releaseCommitted());
  }

  /** The pending entries from `fromSeq` on, in order, as far as they are written. */
  async *entries(opts: { fromSeq?: number } = {}): AsyncGenerator<JournalEntry> {
    let seq = Math.max(opts.fromSeq ?? 1, this.committed + 1);
    while (seq <= this.writer.writtenSeq) {
      const seg = this.segments.find(seq);
      const offset = this.index.offsetOf(seq);
      if (seq <= this.committed || !seg || offset === null) {
        // Committed (and perhaps released) while we were reading: skip to what is pending.
        assert.ok(seq <= this.committed, `pending entry ${seq} has no segment`);
        seq = this.committed + 1;
        continue;
      }
      const lastSeq = Math.min(seg.lastSeq, this.writer.writtenSeq);
      let file: JournalFile;
      try {
        file = await this.fs.open(join(this.opts.dir, seg.name), 'r');
      } catch (err) {
        // Released after a commit that came while the file was being opened: the loop skips ahead.
        if ((err as NodeJS.ErrnoException).code === 'ENOENT' && seq <= this.committed) continue;
        throw err;
      }
      try {
        const stream = new RecordStream(file, offset, seg.writtenBytes);
        // A commit made while the caller held an entry moves the start past what it covers.
        for (; seq <= lastSeq && seq > this.committed; seq++) {
          const r = await stream.next();
          if (r.kind !== 'record' || r.seq !== seq) {
            const what = r.kind === 'record' ? `sequence ${r.seq}` : r.kind;
            throw new AetherError('JOURNAL_CORRUPT', `journal ${this.opts.dir}: reading entry ${seq} from ${seg.name} found ${what} at byte ${r.offset}`, {
              context: { segment: seg.name, seq },
            });
          }
          yield { seq, timestampMs: r.timestampMs, type: r.type, payload: Buffer.from(r.payload) };
        }
      } finally {
        await file.close();
      }
    }
  }

  /**
   * Where the pending entries from `fromSeq` through `upToSeq` (at most what is written) lie on
   * disk, about `maxBytes` of them, so that another thread can read them without this one. Valid
   * until those entries are committed.
   */
  spans(fromSeq: number, upToSeq: number, maxBytes: number): JournalSpan[] {
    const out: JournalSpan[] = [];
    const last = Math.min(upToSeq, this.writer.writtenSeq);
    let seq = Math.max(fromSeq, this.committed + 1);
    let bytes = 0;
    while (seq <= last && bytes < maxBytes) {
      const seg = this.segments.find(seq);
      const offset = this.index.offsetOf(seq);
      if (!seg || offset === null) break;
      const segLast = Math.min(seg.lastSeq, last);
      let end = offset;
      let s = seq;
      // Records of a segment are contiguous: each starts where the one before it ends.
      for (; s <= segLast && bytes < maxBytes; s++) {
        const size = this.index.sizeOf(s) as number;
        end += size;
        bytes += size;
      }
      out.push({ path: join(this.opts.dir, seg.name), offset, endOffset: end, firstSeq: seq, lastSeq: s - 1 });
      seq = s;
    }
    return out;
  }

  pending(): JournalPending {
    return { pendingBytes: this.index.bytes, pendingEntries: this.index.count, oldestPendingTimestampMs: this.index.oldestTimestampMs };
  }

  onPendingChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Applies sync settings live (from a config reload); a policy switch first flushes what is unsynced. */
  async applySyncConfig(settings: SyncSettings): Promise<void> {
    // Off before `manual` takes over: from then on an fsync(2) must move the durable mark.
    if (settings.policy === 'manual') this.outside?.allow(false);
    try {
      const applying = this.controller.apply(settings);
      // The new policy holds from here (before the switch's flush): listeners that depend on it
      // (answers the binding may give without the journal, local-mount.ts) look again now.
      this.notifyPending();
      await applying;
    } finally {
      this.allowOutside();
    }
  }

  /**
   * Lets `outside` fdatasync the journal's files to answer fsync(2) without the journal
   * (OutsideSync): it gets every segment file written from now on, and is allowed to answer only
   * while that is correct. Its failures fail the journal's next flush.
   */
  shareSyncs(outside: OutsideSync): void {
    this.outside = outside;
    this.writer.shareFiles(outside);
    this.allowOutside();
  }

  /** Counts fsync(2)s the outside sync answered (durations of those known). */
  countOutsideSyncs(ok: number, failed: number, seconds: readonly number[]): void {
    this.metrics.syncedOutside(ok, failed, seconds);
  }

  private allowOutside(): void {
    this.outside?.allow(!this.outsideLost && !this.writer.failed && !this.closing && this.controller.settings.policy !== 'manual');
  }

  /** Resolves once no write, flush, or checkpoint is in progress. */
  async idle(): Promise<void> {
    await this.controller.settled();
    await this.writer.idle();
    await this.checkpoint.idle();
    await this.releasing;
  }

  /** Flushes (reason `shutdown`, whatever the policy) and closes the files. Rejects if that flush failed. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.outside?.allow(false);
    this.controller.close();
    if (this.groupRetry) this.clock.clearTimeout(this.groupRetry);
    this.groupRetry = null;
    let failure: unknown = null;
    try {
      await this.controller.flush('shutdown');
    } catch (err) {
      failure = err;
    }
    await this.controller.settled();
    try {
      // After a clean shutdown everything is durable: any later damage is corruption, not a torn write.
      await this.checkpoint.persist();
    } catch (err) {
      failure ??= err;
    }
    await this.writer.close();
    await this.releasing;
    const closed = new AetherError('JOURNAL_CLOSED', 'the journal was closed before this entry was durable', { errno: 'EIO' });
    this.durableWaiters.reject(closed);
    this.writtenWaiters.reject(closed);
    if (failure) throw failure;
  }

  private async flushAll(): Promise<void> {
    const target = this.lastAppended;
    if (target > this.writer.writtenSeq) await this.writtenWaiters.wait(target);
    await this.writer.sync(target);
    this.durableWaiters.release(this.writer.durableSeq);
    // A flush closes settled segments, which may make committed ones releasable; a failure
    // here leaves a committed file behind, which the next open removes.
    this.releaseCommitted().catch(() => undefined);
  }

  private onWritten(seq: number): void {
    this.writtenWaiters.release(seq);
    const first = this.durableWaiters.firstSeq;
    if (first !== null && first <= seq) this.groupSync();
  }

  /** One group fsync for every `immediate` append written so far (joining a queued one if any). */
  private groupSync(): void {
    this.writer.sync().then(
      (point) => {
        this.groupRetryMs = this.retry.delayMs;
        this.durableWaiters.release(point.seq);
      },
      (err: unknown) => {
        const throughSeq = err instanceof AetherError ? Number(err.context.throughSeq) : this.writer.writtenSeq;
        this.durableWaiters.reject(err as Error, throughSeq);
        this.retryGroupSync();
      },
    );
  }

  /**
   * After a failed group fsync (its appends answered EIO), the same bytes are fsynced again after
   * a backoff, as the controller retries its flushes: they stay in the journal, and until they
   * are durable the drain cannot take them. Another append's group fsync covers them sooner.
   */
  private retryGroupSync(): void {
    if (this.groupRetry || this.closing) return;
    const delayMs = this.groupRetryMs;
    this.groupRetryMs = Math.min(this.retry.delayMsMax, delayMs * 2);
    this.groupRetry = this.clock.setTimeout(() => {
      this.groupRetry = null;
      if (!this.closing && this.controller.settings.policy === 'immediate' && this.writer.durableSeq < this.writer.writtenSeq) this.groupSync();
    }, delayMs);
    this.groupRetry.unref?.();
  }

  private onWriteFailed(err: AetherError, writtenSeq: number): void {
    // Records past `writtenSeq` never reached the file: they are not in the journal.
    this.lastAppended = writtenSeq;
    this.appendedBytes = this.writer.writtenBytesTotal;
    this.index.dropAfter(writtenSeq);
    this.writtenWaiters.reject(err);
    // Written records lost to the disk (a failed fdatasync whose pages are gone) are never durable.
    if (err.code === 'JOURNAL_FSYNC_FAILED') this.durableWaiters.reject(err);
    else this.durableWaiters.rejectAfter(err, writtenSeq);
    this.allowOutside();
    this.notifyPending();
  }

  /** Removes fully committed segments, oldest first; runs one at a time, so idle() and close() can wait for it. */
  private releaseCommitted(): Promise<void> {
    const run = this.releasing.then(async () => {
      for (;;) {
        const seg = this.segments.first;
        // Only closed, retired segments go: the active one takes records, an open one awaits fsync.
        if (!seg || !seg.retired || seg.file || seg.lastSeq > this.checkpoint.durableCommittedSeq) return;
        this.segments.shift(seg);
        await this.fs.unlink(join(this.opts.dir, seg.name));
      }
    });
    this.releasing = run.catch(() => undefined);
    return run;
  }

  private notifyPending(): void {
    for (const listener of this.listeners) {
      try {
        listener();
      } catch (err) {
        // A throwing listener is a bug in the listener; it must not undo an append that is
        // already placed, so it surfaces as an uncaught exception instead.
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }
}
