import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { BackpressureConfig } from '../../src/config/model.js';
import { ageMs, reasons, setup } from './helpers.js';

// One step: set the journal's pending figures (age in ms of the oldest entry), then expect the
// journal's active reasons. Thresholds (helpers.T): bytes 100/50, entries 10/5, age 30 s/10 s.
interface Step {
  bytes?: number;
  entries?: number;
  age?: number | null;
  expect: string[];
}

const CASES: { name: string; thresholds?: Partial<BackpressureConfig>; steps: Step[] }[] = [
  {
    name: 'bytes: engages at high-water (>=), holds inside the band, clears at low-water (<=)',
    steps: [
      { bytes: 99, entries: 1, age: 0, expect: [] },
      { bytes: 100, expect: ['bytes'] },
      { bytes: 70, expect: ['bytes'] },
      { bytes: 51, expect: ['bytes'] },
      { bytes: 50, expect: [] },
      { bytes: 99, expect: [] },
    ],
  },
  {
    name: 'entries: engages at high-water, clears at low-water',
    steps: [
      { bytes: 1, entries: 9, age: 0, expect: [] },
      { entries: 10, expect: ['entries'] },
      { entries: 6, expect: ['entries'] },
      { entries: 5, expect: [] },
    ],
  },
  {
    name: 'age: engages at max age (>=), clears at clear age (<=)',
    steps: [
      { bytes: 1, entries: 1, age: 29_999, expect: [] },
      { age: 30_000, expect: ['age'] },
      { age: 10_001, expect: ['age'] },
      { age: 10_000, expect: [] },
    ],
  },
  {
    name: 'any engages, all must clear: bytes engages, entries joins, bytes falls alone, nothing clears until all pass',
    steps: [
      { bytes: 100, entries: 1, age: 0, expect: ['bytes'] },
      { entries: 10, expect: ['bytes', 'entries'] },
      { bytes: 0, expect: ['bytes', 'entries'] },
      { entries: 6, expect: ['bytes', 'entries'] },
      { entries: 5, expect: [] },
    ],
  },
  {
    name: 'all must clear: bytes and entries low, but the oldest entry is still too old',
    steps: [
      { bytes: 100, entries: 1, age: 0, expect: ['bytes'] },
      { bytes: 10, entries: 1, age: 20_000, expect: ['bytes'] },
      { age: 10_000, expect: [] },
    ],
  },
  {
    name: 'all must clear: only low-water checks matter for the clear, not the engaging reason',
    steps: [
      { bytes: 1, entries: 1, age: 30_000, expect: ['age'] },
      { age: 0, bytes: 60, expect: ['age'] },
      { bytes: 50, expect: [] },
    ],
  },
  {
    name: 'nothing pending clears everything (no age when nothing is pending)',
    steps: [
      { bytes: 500, entries: 50, age: 60_000, expect: ['bytes', 'entries', 'age'] },
      { bytes: 0, entries: 0, age: null, expect: [] },
    ],
  },
  {
    name: 'high-water 0 disables the bytes trigger; its low-water check still gates the clear (seed 001)',
    thresholds: { journal_high_water_bytes: 0 },
    steps: [
      { bytes: 1_000_000, entries: 1, age: 0, expect: [] },
      { entries: 10, expect: ['entries'] },
      { entries: 5, expect: ['entries'] },
      { bytes: 51, expect: ['entries'] },
      { bytes: 50, expect: [] },
    ],
  },
  {
    name: 'high-water 0 disables the entries trigger; its low-water check still gates the clear',
    thresholds: { journal_high_water_entries: 0 },
    steps: [
      { bytes: 1, entries: 1_000_000, age: 0, expect: [] },
      { bytes: 100, expect: ['bytes'] },
      { bytes: 50, expect: ['bytes'] },
      { entries: 5, expect: [] },
    ],
  },
  {
    name: 'low-water 0 is literal for the journal: the check passes only once nothing is pending',
    thresholds: { journal_low_water_bytes: 0 },
    steps: [
      { bytes: 100, entries: 1, age: 0, expect: ['bytes'] },
      { bytes: 1, expect: ['bytes'] },
      { bytes: 0, entries: 0, age: null, expect: [] },
    ],
  },
];

describe('journal backpressure reasons', () => {
  for (const c of CASES) {
    it(c.name, () => {
      const s = setup(c.thresholds);
      c.steps.forEach((step, i) => {
        const patch = {
          ...(step.bytes !== undefined ? { pendingBytes: step.bytes } : {}),
          ...(step.entries !== undefined ? { pendingEntries: step.entries } : {}),
          ...(step.age !== undefined ? ageMs(s, step.age) : {}),
        };
        s.journal.set(patch);
        assert.deepEqual(reasons(s).journal, step.expect, `step ${i}: ${JSON.stringify(step)}`);
        assert.equal(s.coordinator.gate.isOpen, step.expect.length === 0, `gate at step ${i}`);
      });
    });
  }
});
