import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BACKPRESSURE_METRIC } from '../../src/runtime/infra/backpressure/metrics.js';
import { metricValue, setup } from './helpers.js';

const engaged = (source: string, reason: string) => ({ source, reason });
const transitions = (source: string, reason: string, transition: string) => ({ source, reason, transition });

describe('backpressure metrics', () => {
  it('every source/reason series exists at 0 from the start', async () => {
    const s = setup();
    for (const [source, reason] of [
      ['journal', 'bytes'],
      ['journal', 'entries'],
      ['journal', 'age'],
      ['cache', 'dirty_bytes'],
      ['cache', 'disk_free'],
    ] as const) {
      assert.equal(await metricValue(s.registry, BACKPRESSURE_METRIC.engaged, engaged(source, reason)), 0);
      assert.equal(await metricValue(s.registry, BACKPRESSURE_METRIC.transitionsTotal, transitions(source, reason, 'engage')), 0);
    }
  });

  it('engaged gauge and transition counters follow each reason', async () => {
    const s = setup();
    s.journal.set({ pendingBytes: 100, pendingEntries: 10, oldestPendingTimestampMs: s.clock.now() });
    assert.equal(await metricValue(s.registry, BACKPRESSURE_METRIC.engaged, engaged('journal', 'bytes')), 1);
    assert.equal(await metricValue(s.registry, BACKPRESSURE_METRIC.engaged, engaged('journal', 'entries')), 1);
    assert.equal(await metricValue(s.registry, BACKPRESSURE_METRIC.engaged, engaged('journal', 'age')), 0);
    s.journal.set({ pendingBytes: 0, pendingEntries: 0, oldestPendingTimestampMs: null });
    assert.equal(await metricValue(s.registry, BACKPRESSURE_METRIC.engaged, engaged('journal', 'bytes')), 0);
    s.cache.set({ dirtyBytes: 1000 });
    s.cache.set({ dirtyBytes: 0 });
    s.cache.set({ dirtyBytes: 1000 });
    assert.equal(await metricValue(s.registry, BACKPRESSURE_METRIC.transitionsTotal, transitions('journal', 'bytes', 'engage')), 1);
    assert.equal(await metricValue(s.registry, BACKPRESSURE_METRIC.transitionsTotal, transitions('journal', 'bytes', 'clear')), 1);
    assert.equal(await metricValue(s.registry, BACKPRESSURE_METRIC.transitionsTotal, transitions('journal', 'entries', 'clear')), 1);
    assert.equal(await metricValue(s.registry, BACKPRESSURE_METRIC.transitionsTotal, transitions('cache', 'dirty_bytes', 'engage')), 2);
    assert.equal(await metricValue(s.registry, BACKPRESSURE_METRIC.transitionsTotal, transitions('cache', 'dirty_bytes', 'clear')), 1);
    assert.equal(await metricValue(s.registry, BACKPRESSURE_METRIC.engaged, engaged('cache', 'dirty_bytes')), 1);
  });

  it('status reports source, reasons and since-when', () => {
    const s = setup();
    const t0 = s.clock.now();
    s.cache.set({ diskFreeBytes: 10 });
    s.clock.advance(5);
    const st = s.coordinator.status();
    assert.equal(st.status, 'engaged');
    assert.equal(st.source, 'cache');
    assert.deepEqual(st.cache.reasons, ['disk_free']);
    assert.equal(st.cache.engaged_since_ms, t0);
    assert.equal(st.cache.disk_free_bytes, 10);
    assert.equal(st.journal.engaged_since_ms, null);
    assert.doesNotThrow(() => JSON.stringify(st));
  });
});
