import { Registry } from 'prom-client';
import type { BackpressureConfig } from '../../src/config/model.js';
import { ManualClock } from '../../src/runtime/infra/clock.js';
import type { JournalPending, JournalPendingSource } from '../../src/runtime/infra/pending.js';
import { BackpressureCoordinator } from '../../src/runtime/infra/backpressure/coordinator.js';
import type { CachePressure, CachePressureSource } from '../../src/runtime/infra/backpressure/inputs.js';

/** Small thresholds so tables stay readable. */
export const T: BackpressureConfig = Object.freeze({
  journal_high_water_bytes: 100,
  journal_low_water_bytes: 50,
  journal_high_water_entries: 10,
  journal_low_water_entries: 5,
  journal_max_age_seconds: 30,
  journal_clear_age_seconds: 10,
  cache_dirty_high_water_bytes: 1000,
  cache_dirty_low_water_bytes: 500,
  cache_min_free_bytes: 100,
  cache_resume_free_bytes: 200,
});

/** An in-test journal: the coordinator sees exactly what the test sets. */
export class FakeJournal implements JournalPendingSource {
  state: JournalPending = { pendingBytes: 0, pendingEntries: 0, oldestPendingTimestampMs: null };
  private readonly listeners = new Set<() => void>();
  pendingCalls = 0;

  pending(): JournalPending {
    this.pendingCalls++;
    return this.state;
  }

  onPendingChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  set(p: Partial<JournalPending>): void {
    this.state = { ...this.state, ...p };
    for (const l of this.listeners) l();
  }

  get listenerCount(): number {
    return this.listeners.size;
  }
}

export class FakeCache implements CachePressureSource {
  state: CachePressure = { dirtyBytes: 0, diskFreeBytes: 1e12 };
  private readonly listeners = new Set<() => void>();

  cachePressure(): CachePressure {
    return this.state;
  }

  onCachePressureChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  set(p: Partial<CachePressure>): void {
    this.state = { ...this.state, ...p };
    for (const l of this.listeners) l();
  }
}

export function setup(thresholds: Partial<BackpressureConfig> = {}) {
  const clock = new ManualClock();
  const journal = new FakeJournal();
  const cache = new FakeCache();
  const registry = new Registry();
  const coordinator = new BackpressureCoordinator({ registry, thresholds: { ...T, ...thresholds }, journal, cache, clock });
  return { clock, journal, cache, registry, coordinator };
}

export type Setup = ReturnType<typeof setup>;

/** The reasons a source is engaged for, as the coordinator reports them. */
export function reasons(s: Setup): { journal: string[]; cache: string[] } {
  const st = s.coordinator.status();
  return { journal: st.journal.reasons, cache: st.cache.reasons };
}

/** Sets the journal's oldest pending entry to be `ageMs` old now. */
export function ageMs(s: Setup, ms: number | null): { oldestPendingTimestampMs: number | null } {
  return { oldestPendingTimestampMs: ms === null ? null : s.clock.now() - ms };
}

/** Value of one series of a metric, by labels; undefined when the series does not exist. */
export async function metricValue(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const m = registry.getSingleMetric(name);
  if (!m) return undefined;
  const data = await m.get();
  const hit = data.values.find((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val) && Object.keys(labels).length === Object.keys(v.labels).length);
  return hit?.value;
}
