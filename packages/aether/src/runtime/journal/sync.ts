import type { SyncPolicy } from '../../config/model.js';
import type { Clock, TimerHandle } from '../infra/clock.js';
import type { JournalMetrics } from './metrics.js';

export type { SyncPolicy };

/** Why a flush ran: the `reason` label of `aether_journal_wal_flush_total` (seed 000). */
export type FlushReason = 'backlog' | 'interval' | 'manual' | 'shutdown';
export const FLUSH_REASONS: readonly FlushReason[] = ['backlog', 'interval', 'manual', 'shutdown'];

export interface SyncSettings {
  policy: SyncPolicy;
  /** Deadline of the `interval` policy, from the first unsynced append. */
  intervalMs: number;
  /** Unsynced bytes that force an early `backlog` flush under `interval`; 0 disables. */
  backlogBytes: number;
}

/** Backoff of the retries after a failed flush. */
export interface RetrySettings {
  delayMs: number;
  delayMsMax: number;
}

export const DEFAULT_RETRY: RetrySettings = { delayMs: 10, delayMsMax: 5000 };

/** What the controller drives: the journal's unsynced bytes and a flush of all of them. */
export interface SyncTarget {
  /** Bytes appended and not yet covered by a successful fdatasync. */
  unsyncedBytes(): number;
  /** Resolves once everything appended before the call is durable. */
  flushAll(): Promise<void>;
}

export function checkSyncSettings(s: SyncSettings): SyncSettings {
  if (s.policy !== 'interval' && s.policy !== 'manual' && s.policy !== 'immediate') throw new RangeError(`unknown journal sync policy '${String(s.policy)}'`);
  if (!Number.isSafeInteger(s.intervalMs) || s.intervalMs <= 0) throw new RangeError(`journal sync interval must be a positive integer of ms, got ${s.intervalMs}`);
  if (!Number.isSafeInteger(s.backlogBytes) || s.backlogBytes < 0) throw new RangeError(`journal sync backlog must be a non-negative integer of bytes, got ${s.backlogBytes}`);
  return { policy: s.policy, intervalMs: s.intervalMs, backlogBytes: s.backlogBytes };
}

/**
 * The sync controller: decides when unsynced journal bytes are flushed, per policy (seed 000).
 *
 * - `interval`: a deadline is armed by the first unsynced append and fires a flush (reason
 *   `interval`); reaching the backlog threshold flushes at once (reason `backlog`). A flush
 *   cancels the deadline (it covers those bytes); after it succeeds, the next deadline is armed
 *   only if bytes are still unsynced (and not armed already by an append made meanwhile).
 * - `manual`: only `flush('manual')`.
 * - `immediate`: appends wait for their own group fsync (the journal does that); the controller
 *   tracks nothing in the background.
 *
 * A failed flush is counted with outcome `error`, leaves the unsynced bytes counted, and is
 * retried with the same reason after a backoff; while a retry is pending, appends trigger
 * nothing, so a failing disk is not hammered by one fsync per append.
 */
export class SyncController {
  private current: SyncSettings;
  private deadline: TimerHandle | null = null;
  private retryTimer: TimerHandle | null = null;
  private retryDelayMs: number;
  private readonly flights = new Set<Promise<void>>();
  private closed = false;

  constructor(
    settings: SyncSettings,
    private readonly target: SyncTarget,
    private readonly clock: Clock,
    private readonly metrics: JournalMetrics,
    private readonly retry: RetrySettings = DEFAULT_RETRY,
  ) {
    this.current = checkSyncSettings(settings);
    this.retryDelayMs = retry.delayMs;
  }

  get settings(): Readonly<SyncSettings> {
    return this.current;
  }

  /**
   * Called after every append: under `interval`, a backlog flush or the deadline. The deadline
   * is armed even while a flush is in flight, so a byte waits at most one interval (plus the
   * fsync) however busy the disk is; the backlog check waits for that flush to land.
   */
  onAppend(): void {
    if (this.current.policy !== 'interval' || this.retryTimer || this.closed) return;
    if (this.flights.size === 0 && this.backlogReached()) this.trigger('backlog');
    else this.armDeadline();
  }

  /**
   * Flushes everything appended so far and counts it under `reason`. Rejects when the flush
   * failed (after counting the error and scheduling a retry).
   */
  flush(reason: FlushReason): Promise<void> {
    this.clearTimers();
    // The handlers run after `flight` is assigned: a promise never settles synchronously.
    const flight: Promise<void> = this.target.flushAll().then(
      () => {
        this.flights.delete(flight);
        this.metrics.flushed(reason, 'success');
        this.retryDelayMs = this.retry.delayMs;
        this.rearm();
      },
      (err: unknown) => {
        this.flights.delete(flight);
        this.metrics.flushed(reason, 'error');
        this.scheduleRetry(reason);
        throw err;
      },
    );
    this.flights.add(flight);
    return flight;
  }

  /** Resolves once no flush is in flight (whatever their outcome). */
  async settled(): Promise<void> {
    while (this.flights.size > 0) await Promise.allSettled([...this.flights]);
  }

  /**
   * Applies new settings live. A policy switch first flushes whatever is unsynced (counted as
   * `manual`: the operator asked for it through a reload), so no byte is left to a policy that
   * no longer looks after it.
   */
  async apply(next: SyncSettings): Promise<void> {
    const settings = checkSyncSettings(next);
    const switched = settings.policy !== this.current.policy;
    const shorter = settings.intervalMs < this.current.intervalMs;
    this.current = settings;
    if (switched) {
      this.clearTimers();
      if (this.target.unsyncedBytes() > 0) await this.flush('manual');
    } else if (shorter && this.deadline) {
      // A deadline armed with the longer interval would hold bytes past the new one.
      this.clock.clearTimeout(this.deadline);
      this.deadline = null;
    }
    this.rearm();
  }

  /** Stops every timer; the journal runs the shutdown flush itself. */
  close(): void {
    this.closed = true;
    this.clearTimers();
  }

  private backlogReached(): boolean {
    const { backlogBytes } = this.current;
    return backlogBytes > 0 && this.target.unsyncedBytes() >= backlogBytes;
  }

  /** After a flush or a settings change: the next backlog flush or deadline, if bytes remain. */
  private rearm(): void {
    if (this.current.policy !== 'interval' || this.flights.size > 0 || this.retryTimer || this.closed) return;
    if (this.target.unsyncedBytes() === 0) {
      // An append made during the flush armed a deadline, and the flush covered its bytes too.
      this.clearTimers();
      return;
    }
    if (this.backlogReached()) this.trigger('backlog');
    else this.armDeadline();
  }

  private armDeadline(): void {
    if (this.deadline) return;
    this.deadline = this.clock.setTimeout(() => {
      this.deadline = null;
      this.trigger('interval');
    }, this.current.intervalMs);
    this.deadline.unref?.();
  }

  private scheduleRetry(reason: FlushReason): void {
    if (this.closed || reason === 'shutdown') return;
    this.clearTimers();
    const delayMs = this.retryDelayMs;
    this.retryDelayMs = Math.min(this.retry.delayMsMax, delayMs * 2);
    this.retryTimer = this.clock.setTimeout(() => {
      this.retryTimer = null;
      this.trigger(reason);
    }, delayMs);
    this.retryTimer.unref?.();
  }

  /** A flush the controller started itself: its failure is counted and retried, not thrown. */
  private trigger(reason: FlushReason): void {
    this.flush(reason).catch(() => undefined);
  }

  private clearTimers(): void {
    if (this.deadline) this.clock.clearTimeout(this.deadline);
    if (this.retryTimer) this.clock.clearTimeout(this.retryTimer);
    this.deadline = null;
    this.retryTimer = null;
  }
}
