import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { BackpressureConfig } from '../../src/config/model.js';
import { reasons, setup } from './helpers.js';

// Thresholds (helpers.T): dirty 1000 high / 500 low; disk free: engage < 100, clear >= 200.
interface Step {
  dirty?: number;
  free?: number | null;
  expect: string[];
}

const CASES: { name: string; thresholds?: Partial<BackpressureConfig>; steps: Step[] }[] = [
  {
    name: 'dirty_bytes: engages at high-water (>=), holds in the band, clears at low-water (<=)',
    steps: [
      { dirty: 999, expect: [] },
      { dirty: 1000, expect: ['dirty_bytes'] },
      { dirty: 501, expect: ['dirty_bytes'] },
      { dirty: 500, expect: [] },
      { dirty: 999, expect: [] },
    ],
  },
  {
    name: 'disk_free: engages below min free (<), holds in the band, clears at resume (>=)',
    steps: [
      { free: 100, expect: [] },
      { free: 99, expect: ['disk_free'] },
      { free: 150, expect: ['disk_free'] },
      { free: 199, expect: ['disk_free'] },
      { free: 200, expect: [] },
      { free: 150, expect: [] },
    ],
  },
  {
    name: 'each cache reason clears by its own rule, independently',
    steps: [
      { dirty: 1000, free: 50, expect: ['dirty_bytes', 'disk_free'] },
      { dirty: 400, expect: ['disk_free'] },
      { dirty: 1200, expect: ['dirty_bytes', 'disk_free'] },
      { free: 500, expect: ['dirty_bytes'] },
      { dirty: 0, expect: [] },
    ],
  },
  {
    name: 'unknown free space (not measured yet) never engages disk_free',
    steps: [{ free: null, expect: [] }],
  },
  {
    name: 'dirty high-water 0 disables dirty_bytes',
    thresholds: { cache_dirty_high_water_bytes: 0 },
    steps: [{ dirty: 1e12, expect: [] }],
  },
  {
    name: 'min free 0 disables disk_free',
    thresholds: { cache_min_free_bytes: 0 },
    steps: [{ free: 0, expect: [] }],
  },
];

describe('cache backpressure reasons', () => {
  for (const c of CASES) {
    it(c.name, () => {
      const s = setup(c.thresholds);
      c.steps.forEach((step, i) => {
        s.cache.set({
          ...(step.dirty !== undefined ? { dirtyBytes: step.dirty } : {}),
          ...(step.free !== undefined ? { diskFreeBytes: step.free } : {}),
        });
        assert.deepEqual(reasons(s).cache, step.expect, `step ${i}: ${JSON.stringify(step)}`);
        assert.equal(s.coordinator.gate.isOpen, step.expect.length === 0, `gate at step ${i}`);
      });
    });
  }

  it('journal and cache engage independently; the gate opens only when both are clear', () => {
    const s = setup();
    s.journal.set({ pendingBytes: 100, pendingEntries: 1, oldestPendingTimestampMs: s.clock.now() });
    s.cache.set({ dirtyBytes: 1000 });
    assert.equal(s.coordinator.status().source, 'journal+cache');
    s.journal.set({ pendingBytes: 0, pendingEntries: 0, oldestPendingTimestampMs: null });
    assert.equal(s.coordinator.status().source, 'cache');
    assert.equal(s.coordinator.gate.isOpen, false);
    s.cache.set({ dirtyBytes: 0 });
    assert.equal(s.coordinator.status().source, 'none');
    assert.equal(s.coordinator.gate.isOpen, true);
  });
});
