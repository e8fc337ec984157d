import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { resolveConfigDetailed } from '../../src/config/index.js';
import { BackpressureCoordinator } from '../../src/runtime/infra/backpressure/coordinator.js';
import { ManualClock } from '../../src/runtime/infra/clock.js';
import { FakeCache, FakeJournal, reasons, setup, T } from './helpers.js';

describe('low-water above high-water is clamped (seed 002)', () => {
  it('through configuration: resolution clamps with a warning and the coordinator clears just below high-water', () => {
    const resolved = resolveConfigDetailed({
      cwd: '/nonexistent',
      env: { AFS_AETHER_CACHE_DIRTY_HIGH_WATER_BYTES: '1000', AFS_AETHER_CACHE_DIRTY_LOW_WATER_BYTES: '5000' },
    });
    assert.equal(resolved.config.backpressure.cache_dirty_low_water_bytes, 1000);
    assert.ok(resolved.warnings.some((w) => w.includes('AFS_AETHER_CACHE_DIRTY_LOW_WATER_BYTES=5000')));
    const cache = new FakeCache();
    const c = new BackpressureCoordinator({ registry: new Registry(), thresholds: resolved.config.backpressure, cache, clock: new ManualClock() });
    cache.set({ dirtyBytes: 1000 });
    assert.equal(c.gate.isOpen, false);
    cache.set({ dirtyBytes: 999 });
    assert.equal(c.gate.isOpen, true);
  });

  it('thresholds handed over directly are clamped the same way', () => {
    const s = setup({ cache_dirty_low_water_bytes: 5000, journal_low_water_bytes: 900, journal_low_water_entries: 99 });
    assert.equal(s.coordinator.thresholds.cache_dirty_low_water_bytes, 1000);
    assert.equal(s.coordinator.thresholds.journal_low_water_bytes, 100);
    assert.equal(s.coordinator.thresholds.journal_low_water_entries, 10);
  });

  it('clamped to high-water, the state does not flap at the threshold itself', () => {
    const s = setup({ cache_dirty_low_water_bytes: 5000, journal_low_water_bytes: 900 });
    s.cache.set({ dirtyBytes: 1000 });
    s.journal.set({ pendingBytes: 100, pendingEntries: 1, oldestPendingTimestampMs: s.clock.now() });
    for (let i = 0; i < 5; i++) {
      s.coordinator.evaluate();
      assert.deepEqual(reasons(s), { journal: ['bytes'], cache: ['dirty_bytes'] });
    }
    s.cache.set({ dirtyBytes: 999 });
    s.journal.set({ pendingBytes: 99 });
    assert.deepEqual(reasons(s), { journal: [], cache: [] });
  });

  it('a high-water of 0 leaves the low-water alone (nothing to clamp to)', () => {
    const s = setup({ cache_dirty_high_water_bytes: 0, cache_dirty_low_water_bytes: 5000 });
    assert.equal(s.coordinator.thresholds.cache_dirty_low_water_bytes, 5000);
  });

  it('a resume level below the minimum free space is raised to it', () => {
    const s = setup({ cache_min_free_bytes: 100, cache_resume_free_bytes: 10 });
    assert.equal(s.coordinator.thresholds.cache_resume_free_bytes, 100);
    s.cache.set({ diskFreeBytes: 99 });
    assert.deepEqual(reasons(s).cache, ['disk_free']);
    s.cache.set({ diskFreeBytes: 100 });
    assert.deepEqual(reasons(s).cache, []);
  });

  it('the coordinator never mutates the thresholds it was given', () => {
    const given = { ...T, cache_dirty_low_water_bytes: 5000 };
    new BackpressureCoordinator({ registry: new Registry(), thresholds: given, journal: new FakeJournal(), clock: new ManualClock() });
    assert.equal(given.cache_dirty_low_water_bytes, 5000);
  });
});
