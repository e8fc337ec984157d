import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { ConfigStore } from '../../src/config/index.js';
import { BackpressureCoordinator } from '../../src/runtime/infra/backpressure/coordinator.js';
import { ManualClock } from '../../src/runtime/infra/clock.js';
import { FakeCache, FakeJournal } from './helpers.js';

function withConfig(toml: string) {
  const cwd = mkdtempSync(join(tmpdir(), 'aether-bp-'));
  const file = join(cwd, 'aether.toml');
  writeFileSync(file, toml);
  const store = new ConfigStore({ cwd, env: {} });
  const clock = new ManualClock();
  const journal = new FakeJournal();
  const cache = new FakeCache();
  const coordinator = new BackpressureCoordinator({ registry: new Registry(), config: store, journal, cache, clock });
  const reload = (t: string) => {
    writeFileSync(file, t);
    const r = store.reload();
    assert.ok(r.ok, JSON.stringify(r));
    return r;
  };
  return { store, clock, journal, cache, coordinator, reload, file };
}

describe('thresholds reload live through ConfigStore', () => {
  it('starts from the store and applies a lowered high-water at once, with no new input', () => {
    const s = withConfig('[backpressure]\ncache_dirty_high_water_bytes = 1000\ncache_dirty_low_water_bytes = 500\n');
    assert.equal(s.coordinator.thresholds.cache_dirty_high_water_bytes, 1000);
    s.cache.set({ dirtyBytes: 800 });
    assert.equal(s.coordinator.gate.isOpen, true);
    s.reload('[backpressure]\ncache_dirty_high_water_bytes = 700\ncache_dirty_low_water_bytes = 500\n');
    assert.equal(s.coordinator.gate.isOpen, false);
    assert.deepEqual(s.coordinator.status().cache.reasons, ['dirty_bytes']);
  });

  it('a raised low-water lets an engaged state clear on the next evaluation', () => {
    const s = withConfig('[backpressure]\ncache_dirty_high_water_bytes = 1000\ncache_dirty_low_water_bytes = 500\n');
    s.cache.set({ dirtyBytes: 1000 });
    s.cache.set({ dirtyBytes: 900 });
    assert.equal(s.coordinator.gate.isOpen, false);
    s.reload('[backpressure]\ncache_dirty_high_water_bytes = 1000\ncache_dirty_low_water_bytes = 950\n');
    assert.equal(s.coordinator.gate.isOpen, true);
  });

  it('a reload clamps like resolution does (low above high)', () => {
    const s = withConfig('[backpressure]\ncache_dirty_high_water_bytes = 1000\ncache_dirty_low_water_bytes = 500\n');
    const r = s.reload('[backpressure]\ncache_dirty_high_water_bytes = 1000\ncache_dirty_low_water_bytes = 4000\n');
    assert.ok(r.ok && r.warnings.some((w) => w.includes('clamped')));
    assert.equal(s.coordinator.thresholds.cache_dirty_low_water_bytes, 1000);
  });

  it('a shorter max age moves the age timer', () => {
    const s = withConfig('[backpressure]\njournal_max_age_seconds = 30\njournal_clear_age_seconds = 10\n');
    s.journal.set({ pendingBytes: 1, pendingEntries: 1, oldestPendingTimestampMs: s.clock.now() });
    s.clock.advance(20_000);
    s.reload('[backpressure]\njournal_max_age_seconds = 25\njournal_clear_age_seconds = 10\n');
    s.clock.advance(4_999);
    assert.equal(s.coordinator.gate.isOpen, true);
    s.clock.advance(1);
    assert.deepEqual(s.coordinator.status().journal.reasons, ['age']);
  });

  it('a failed reload leaves the running thresholds as they were', () => {
    const s = withConfig('[backpressure]\njournal_high_water_bytes = 100\njournal_low_water_bytes = 50\n');
    writeFileSync(s.file, '[backpressure]\njournal_high_water_bytes = "lots"\n');
    assert.equal(s.store.reload().ok, false);
    assert.equal(s.coordinator.thresholds.journal_high_water_bytes, 100);
  });

  it('after close() reloads no longer reach the coordinator', () => {
    const s = withConfig('[backpressure]\ncache_dirty_high_water_bytes = 1000\ncache_dirty_low_water_bytes = 500\n');
    s.coordinator.close();
    s.reload('[backpressure]\ncache_dirty_high_water_bytes = 2000\ncache_dirty_low_water_bytes = 500\n');
    assert.equal(s.coordinator.thresholds.cache_dirty_high_water_bytes, 1000);
  });
});
