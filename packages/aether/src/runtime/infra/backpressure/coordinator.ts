import type { Registry } from 'prom-client';
import type { BackpressureConfig } from '../../../config/model.js';
import type { ConfigStore } from '../../../config/store.js';
import { systemClock, type Clock, type TimerHandle } from '../clock.js';
import type { JournalPendingSource } from '../pending.js';
import { WriteGate } from './gate.js';
import type { CachePressureSource } from './inputs.js';
import { BackpressureMetrics, type Source } from './metrics.js';
import {
  CACHE_REASONS,
  JOURNAL_AGE,
  JOURNAL_REASONS,
  nextCacheMask,
  nextJournalMask,
  reasonsOf,
  type CacheInputs,
  type CacheReason,
  type JournalInputs,
  type JournalReason,
} from './rules.js';
import { normalizeThresholds, thresholdsFromSection, type Thresholds } from './thresholds.js';

export interface CoordinatorOptions {
  /** Where the metrics register; each test passes a fresh one. */
  registry: Registry;
  /** Initial thresholds. With `config` and no thresholds, its current `[backpressure]` section. */
  thresholds?: BackpressureConfig;
  /** When given, `[backpressure]` reloads apply live and take effect at once. */
  config?: ConfigStore;
  journal?: JournalPendingSource;
  cache?: CachePressureSource;
  clock?: Clock;
  /** Bound on writers queued at the gate (default 65536). */
  maxWaiters?: number;
}

export interface SourceStatus<R extends string> {
  engaged: boolean;
  reasons: R[];
  /** When this source last went from clear to engaged; null while clear. */
  engaged_since_ms: number | null;
}

export interface BackpressureStatus {
  engaged: boolean;
  status: 'engaged' | 'clear';
  /** Which sources hold writers back. */
  source: 'none' | 'journal' | 'cache' | 'journal+cache';
  journal: SourceStatus<JournalReason> & { pending_bytes: number; pending_entries: number; oldest_age_ms: number | null };
  cache: SourceStatus<CacheReason> & { dirty_bytes: number; disk_free_bytes: number | null };
  waiting_writers: number;
  thresholds: Thresholds;
}

/**
 * One coordinator for every source of backpressure (DESIGN §5). It re-evaluates on every change
 * of its inputs, on a timer for the journal's age trigger, and on threshold reloads, and opens or
 * shuts the writers' gate accordingly.
 */
export class BackpressureCoordinator {
  readonly gate: WriteGate;
  private thresholdsNow: Thresholds;
  private journalMask = 0;
  private cacheMask = 0;
  private journalSinceMs: number | null = null;
  private cacheSinceMs: number | null = null;
  private ageTimer: TimerHandle | null = null;
  private ageDeadlineMs: number | null = null;
  private closed = false;
  private readonly clock: Clock;
  private readonly metrics: BackpressureMetrics;
  private readonly journal: JournalPendingSource | undefined;
  private readonly cache: CachePressureSource | undefined;
  private readonly unsubscribe: (() => void)[] = [];
  // Reused on every evaluation so the hot path allocates nothing of its own.
  private readonly journalIn: JournalInputs = { pendingBytes: 0, pendingEntries: 0, oldestAgeMs: null };
  private readonly cacheIn: CacheInputs = { dirtyBytes: 0, diskFreeBytes: null };

  constructor(opts: CoordinatorOptions) {
    const initial = opts.thresholds ?? opts.config?.current.backpressure;
    if (!initial) throw new TypeError('BackpressureCoordinator needs thresholds or a ConfigStore');
    this.thresholdsNow = normalizeThresholds(initial);
    this.clock = opts.clock ?? systemClock;
    this.journal = opts.journal;
    this.cache = opts.cache;
    this.gate = new WriteGate({
      clock: this.clock,
      maxWaiters: opts.maxWaiters ?? 65536,
      onWaited: (s) => this.metrics.waitSeconds.observe(s),
    });
    this.metrics = new BackpressureMetrics(opts.registry, () => this.gate.waiting);
    const evaluate = (): void => this.evaluate();
    if (this.journal) this.unsubscribe.push(this.journal.onPendingChange(evaluate));
    if (this.cache) this.unsubscribe.push(this.cache.onCachePressureChange(evaluate));
    if (opts.config) this.unsubscribe.push(opts.config.observe('backpressure', (c) => this.setThresholds(thresholdsFromSection(c.new))));
    this.evaluate();
  }

  get thresholds(): Thresholds {
    return this.thresholdsNow;
  }

  get engaged(): boolean {
    return this.journalMask !== 0 || this.cacheMask !== 0;
  }

  /** Replaces the thresholds (normalised) and re-evaluates at once. */
  setThresholds(t: BackpressureConfig): void {
    this.thresholdsNow = normalizeThresholds(t);
    this.evaluate();
  }

  /** Recomputes the state from the current inputs. Cheap: a few comparisons when nothing changes. */
  evaluate(): void {
    if (this.closed) return;
    const now = this.clock.now();
    const t = this.thresholdsNow;
    if (this.journal) {
      const p = this.journal.pending();
      const oldest = p.oldestPendingTimestampMs;
      this.journalIn.pendingBytes = p.pendingBytes;
      this.journalIn.pendingEntries = p.pendingEntries;
      this.journalIn.oldestAgeMs = oldest === null ? null : Math.max(0, now - oldest);
      const next = nextJournalMask(this.journalMask, t, this.journalIn);
      if (next !== this.journalMask) this.journalMask = this.transition('journal', this.journalMask, next, now);
      this.scheduleAgeCheck(oldest, now);
    }
    if (this.cache) {
      const c = this.cache.cachePressure();
      this.cacheIn.dirtyBytes = c.dirtyBytes;
      this.cacheIn.diskFreeBytes = c.diskFreeBytes;
      const next = nextCacheMask(this.cacheMask, t, this.cacheIn);
      if (next !== this.cacheMask) this.cacheMask = this.transition('cache', this.cacheMask, next, now);
    }
    this.gate.setOpen(this.journalMask === 0 && this.cacheMask === 0);
  }

  status(): BackpressureStatus {
    this.evaluate();
    const j = this.journalMask;
    const c = this.cacheMask;
    const source = j !== 0 && c !== 0 ? 'journal+cache' : j !== 0 ? 'journal' : c !== 0 ? 'cache' : 'none';
    return {
      engaged: j !== 0 || c !== 0,
      status: j !== 0 || c !== 0 ? 'engaged' : 'clear',
      source,
      journal: {
        engaged: j !== 0,
        reasons: reasonsOf(j, JOURNAL_REASONS),
        engaged_since_ms: this.journalSinceMs,
        pending_bytes: this.journalIn.pendingBytes,
        pending_entries: this.journalIn.pendingEntries,
        oldest_age_ms: this.journalIn.oldestAgeMs,
      },
      cache: {
        engaged: c !== 0,
        reasons: reasonsOf(c, CACHE_REASONS),
        engaged_since_ms: this.cacheSinceMs,
        dirty_bytes: this.cacheIn.dirtyBytes,
        disk_free_bytes: this.cacheIn.diskFreeBytes,
      },
      waiting_writers: this.gate.waiting,
      thresholds: this.thresholdsNow,
    };
  }

  /** Stops evaluating and releases every waiting writer with BACKPRESSURE_CLOSED. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const off of this.unsubscribe.splice(0)) off();
    if (this.ageTimer) this.clock.clearTimeout(this.ageTimer);
    this.ageTimer = null;
    this.gate.close();
  }

  private transition(source: Source, prev: number, next: number, now: number): number {
    const table = source === 'journal' ? JOURNAL_REASONS : CACHE_REASONS;
    for (const [reason, bit] of table) {
      if ((prev & bit) === (next & bit)) continue;
      this.metrics.transition(source, reason, (next & bit) !== 0 ? 'engage' : 'clear');
    }
    const since = prev === 0 ? now : next === 0 ? null : source === 'journal' ? this.journalSinceMs : this.cacheSinceMs;
    if (source === 'journal') this.journalSinceMs = since;
    else this.cacheSinceMs = since;
    return next;
  }

  /**
   * Age grows with no input changing, so the age trigger needs a timer: one, set for the moment
   * the oldest pending entry reaches the max age, moved only when that moment moves.
   */
  private scheduleAgeCheck(oldestMs: number | null, now: number): void {
    const maxAgeMs = this.thresholdsNow.journal_max_age_seconds * 1000;
    const deadline = maxAgeMs > 0 && oldestMs !== null && (this.journalMask & JOURNAL_AGE) === 0 ? oldestMs + maxAgeMs : null;
    if (deadline === this.ageDeadlineMs) return;
    if (this.ageTimer) this.clock.clearTimeout(this.ageTimer);
    this.ageTimer = null;
    this.ageDeadlineMs = deadline;
    if (deadline === null) return;
    this.ageTimer = this.clock.setTimeout(() => {
      this.ageTimer = null;
      this.ageDeadlineMs = null;
      this.evaluate();
    }, Math.max(0, deadline - now));
    this.ageTimer.unref?.();
  }
}
