import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { METRIC } from '../../metrics/names.js';
import type { JournalPending } from '../infra/pending.js';
import { FLUSH_REASONS, type FlushReason } from './sync.js';

/** Journal metrics beyond the seed's names (those stay in metrics/names.ts). */
export const JOURNAL_METRIC = {
  fsyncTotal: 'aether_journal_fsync_total',
  flushDurationSeconds: 'aether_journal_flush_duration_seconds',
  flushBytes: 'aether_journal_flush_bytes',
  appendsTotal: 'aether_journal_appends_total',
  unsyncedBytes: 'aether_journal_unsynced_bytes',
  segments: 'aether_journal_segments',
} as const;

export type FlushOutcome = 'success' | 'error';

/** What the gauges read at scrape time, so they are exact whenever they are looked at. */
export interface JournalGaugeSource {
  pending(): JournalPending;
  unsyncedBytes(): number;
  segmentCount(): number;
  nowMs(): number;
}

export class JournalMetrics {
  private readonly walFlush: Counter<'reason' | 'outcome'>;
  private readonly syncCount: Counter<'policy'>;
  private readonly fsyncs: Counter<'outcome'>;
  private readonly flushSeconds: Histogram;
  private readonly flushBytes: Histogram;
  private readonly appends: Counter;

  constructor(registry: Registry, source: JournalGaugeSource) {
    const registers = [registry];
    this.walFlush = new Counter({
      name: METRIC.journalWalFlushTotal,
      help: 'Journal WAL flushes by the sync controller, by reason and outcome.',
      labelNames: ['reason', 'outcome'],
      registers,
    });
    this.syncCount = new Counter({
      name: METRIC.journalSyncCountTotal,
      help: 'Successful journal WAL flushes; the policy label is the flush reason.',
      labelNames: ['policy'],
      registers,
    });
    for (const reason of FLUSH_REASONS) {
      // Every series exists from the start, so a rate() over a fresh mount reads 0, not nothing.
      this.walFlush.inc({ reason, outcome: 'success' }, 0);
      this.walFlush.inc({ reason, outcome: 'error' }, 0);
      this.syncCount.inc({ policy: reason }, 0);
    }
    this.fsyncs = new Counter({
      name: JOURNAL_METRIC.fsyncTotal,
      help: 'fdatasync batches on journal segments (group commits included), by outcome.',
      labelNames: ['outcome'],
      registers,
    });
    this.fsyncs.inc({ outcome: 'success' }, 0);
    this.fsyncs.inc({ outcome: 'error' }, 0);
    this.flushSeconds = new Histogram({
      name: JOURNAL_METRIC.flushDurationSeconds,
      help: 'Time one fdatasync batch on the journal took.',
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    });
    this.flushBytes = new Histogram({
      name: JOURNAL_METRIC.flushBytes,
      help: 'Record bytes one successful fdatasync batch made durable.',
      buckets: [4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864],
      registers,
    });
    this.appends = new Counter({ name: JOURNAL_METRIC.appendsTotal, help: 'Records appended to the journal.', registers });
    new Gauge({
      name: METRIC.journalPendingBytes,
      help: 'Journal bytes appended but not yet committed downstream.',
      registers,
      collect() {
        this.set(source.pending().pendingBytes);
      },
    });
    new Gauge({
      name: METRIC.journalPendingEntries,
      help: 'Journal entries appended but not yet committed downstream.',
      registers,
      collect() {
        this.set(source.pending().pendingEntries);
      },
    });
    new Gauge({
      name: METRIC.journalOldestEntryAgeSeconds,
      help: 'Age of the oldest journal entry not yet committed downstream (0 when none).',
      registers,
      collect() {
        const oldest = source.pending().oldestPendingTimestampMs;
        this.set(oldest === null ? 0 : Math.max(0, source.nowMs() - oldest) / 1000);
      },
    });
    new Gauge({
      name: JOURNAL_METRIC.unsyncedBytes,
      help: 'Journal bytes appended but not yet made durable by fdatasync.',
      registers,
      collect() {
        this.set(source.unsyncedBytes());
      },
    });
    new Gauge({
      name: JOURNAL_METRIC.segments,
      help: 'Journal segment files held.',
      registers,
      collect() {
        this.set(source.segmentCount());
      },
    });
  }

  flushed(reason: FlushReason, outcome: FlushOutcome): void {
    this.walFlush.inc({ reason, outcome });
    if (outcome === 'success') this.syncCount.inc({ policy: reason });
  }

  fsynced(outcome: FlushOutcome, seconds: number, bytes: number): void {
    this.fsyncs.inc({ outcome });
    this.flushSeconds.observe(seconds);
    if (outcome === 'success') this.flushBytes.observe(bytes);
  }

  /**
   * fsync(2)s the FUSE binding answered with its own fdatasync (OutsideSync): manual flushes and
   * fdatasync batches like the journal's own; durations as far as known, bytes not (the journal's
   * next flush counts them).
   */
  syncedOutside(ok: number, failed: number, seconds: readonly number[]): void {
    for (const [outcome, n] of [['success', ok], ['error', failed]] as const) {
      if (n === 0) continue;
      this.walFlush.inc({ reason: 'manual', outcome }, n);
      if (outcome === 'success') this.syncCount.inc({ policy: 'manual' }, n);
      this.fsyncs.inc({ outcome }, n);
    }
    for (const s of seconds) this.flushSeconds.observe(s);
  }

  appended(): void {
    this.appends.inc();
  }
}
