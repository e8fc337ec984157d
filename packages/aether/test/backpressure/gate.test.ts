import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { isAetherError } from '../../src/errors.js';
import { BackpressureCoordinator } from '../../src/runtime/infra/backpressure/coordinator.js';
import { BACKPRESSURE_METRIC } from '../../src/runtime/infra/backpressure/metrics.js';
import { FakeCache, metricValue, setup, T } from './helpers.js';

const tick = () => new Promise<void>((r) => setImmediate(r));

describe('write gate', () => {
  it('is open with a synchronous fast path while nothing is engaged', async () => {
    const s = setup();
    assert.equal(s.coordinator.gate.isOpen, true);
    const p1 = s.coordinator.gate.admit();
    assert.equal(p1, s.coordinator.gate.admit(), 'the open path hands out one shared resolved promise');
    await p1;
    assert.equal(s.coordinator.gate.waiting, 0);
  });

  it('holds writers while engaged and releases them in arrival order when it clears', async () => {
    const s = setup();
    s.cache.set({ dirtyBytes: 1000 });
    const order: number[] = [];
    const waits = [0, 1, 2, 3, 4].map((i) => s.coordinator.gate.admit().then(() => order.push(i)));
    await tick();
    assert.deepEqual(order, []);
    assert.equal(s.coordinator.gate.waiting, 5);
    s.cache.set({ dirtyBytes: 600 });
    await tick();
    assert.deepEqual(order, [], 'still inside the hysteresis band');
    s.cache.set({ dirtyBytes: 500 });
    await Promise.all(waits);
    assert.deepEqual(order, [0, 1, 2, 3, 4]);
    assert.equal(s.coordinator.gate.waiting, 0);
  });

  it('writers that arrive after a re-engage wait for the next clear, behind nobody released earlier', async () => {
    const s = setup();
    s.cache.set({ dirtyBytes: 1000 });
    const order: string[] = [];
    const a = s.coordinator.gate.admit().then(() => order.push('a'));
    s.cache.set({ dirtyBytes: 0 });
    s.cache.set({ dirtyBytes: 1000 });
    const b = s.coordinator.gate.admit().then(() => order.push('b'));
    await a;
    await tick();
    assert.deepEqual(order, ['a']);
    s.cache.set({ dirtyBytes: 0 });
    await b;
    assert.deepEqual(order, ['a', 'b']);
  });

  it('measures how long writers waited', async () => {
    const s = setup();
    s.journal.set({ pendingBytes: 100, pendingEntries: 1, oldestPendingTimestampMs: s.clock.now() });
    const w1 = s.coordinator.gate.admit();
    s.clock.advance(2_000);
    const w2 = s.coordinator.gate.admit();
    s.clock.advance(500);
    s.journal.set({ pendingBytes: 0, pendingEntries: 0, oldestPendingTimestampMs: null });
    await Promise.all([w1, w2]);
    const h = await s.registry.getSingleMetric(BACKPRESSURE_METRIC.waitSeconds)?.get();
    const sum = h?.values.find((v) => (v as { metricName?: string }).metricName === `${BACKPRESSURE_METRIC.waitSeconds}_sum`)?.value;
    const count = h?.values.find((v) => (v as { metricName?: string }).metricName === `${BACKPRESSURE_METRIC.waitSeconds}_count`)?.value;
    assert.equal(count, 2);
    assert.equal(sum, 3);
  });

  it('close() rejects queued and later writers with a typed error', async () => {
    const s = setup();
    s.cache.set({ dirtyBytes: 1000 });
    const waiting = s.coordinator.gate.admit();
    assert.equal(await metricValue(s.registry, BACKPRESSURE_METRIC.waitingWriters), 1);
    s.coordinator.close();
    await assert.rejects(waiting, (e) => isAetherError(e, 'BACKPRESSURE_CLOSED') && e.errno === 'EIO');
    assert.equal(s.coordinator.gate.isOpen, false);
    await assert.rejects(s.coordinator.gate.admit(), (e) => isAetherError(e, 'BACKPRESSURE_CLOSED'));
    s.cache.set({ dirtyBytes: 0 });
    assert.equal(s.coordinator.gate.isOpen, false, 'a closed gate stays closed');
  });

  it('bounds the queue of waiting writers', async () => {
    const cache = new FakeCache();
    const c = new BackpressureCoordinator({ registry: new Registry(), thresholds: T, cache, maxWaiters: 2 });
    cache.set({ dirtyBytes: 1000 });
    const held = [c.gate.admit(), c.gate.admit()];
    await assert.rejects(c.gate.admit(), (e) => isAetherError(e, 'BACKPRESSURE_QUEUE_FULL') && e.errno === 'EAGAIN');
    cache.set({ dirtyBytes: 0 });
    await Promise.all(held);
  });
});
