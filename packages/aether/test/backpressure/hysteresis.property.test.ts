import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { BackpressureConfig } from '../../src/config/model.js';
import type { Thresholds } from '../../src/runtime/infra/backpressure/thresholds.js';
import { setup, type Setup } from './helpers.js';

// Random thresholds (low-water sometimes above high-water, so clamping is exercised too) and
// random sequences of input changes and clock advances. After every step the state may only have
// changed if a threshold was crossed, and must have changed if one was.

const thresholdsArb = fc.record({
  journal_high_water_bytes: fc.integer({ min: 0, max: 120 }),
  journal_low_water_bytes: fc.integer({ min: 0, max: 150 }),
  journal_high_water_entries: fc.integer({ min: 0, max: 12 }),
  journal_low_water_entries: fc.integer({ min: 0, max: 15 }),
  journal_clear_age_seconds: fc.integer({ min: 0, max: 20 }),
  journal_max_age_seconds: fc.integer({ min: 1, max: 40 }),
  cache_dirty_high_water_bytes: fc.integer({ min: 0, max: 1200 }),
  cache_dirty_low_water_bytes: fc.integer({ min: 0, max: 1500 }),
  cache_min_free_bytes: fc.integer({ min: 0, max: 300 }),
  cache_resume_free_bytes: fc.integer({ min: 0, max: 400 }),
}).filter((t) => t.journal_max_age_seconds > t.journal_clear_age_seconds);

type Step =
  | { kind: 'journal'; bytes: number; entries: number; oldestAgoMs: number | null }
  | { kind: 'cache'; dirty: number; free: number }
  | { kind: 'advance'; ms: number }
  | { kind: 'again' };

/** Values anywhere in range, or right at / beside a threshold, where flapping would show. */
function near(max: number, edges: number[]): fc.Arbitrary<number> {
  return fc.oneof(
    fc.integer({ min: 0, max }),
    fc.constantFrom(...edges).chain((e) => fc.integer({ min: Math.max(0, e - 1), max: e + 1 })),
  );
}

function stepArb(t: BackpressureConfig): fc.Arbitrary<Step> {
  return fc.oneof(
    fc.record({
      kind: fc.constant('journal' as const),
      bytes: near(160, [t.journal_high_water_bytes, t.journal_low_water_bytes]),
      entries: near(16, [t.journal_high_water_entries, t.journal_low_water_entries]),
      oldestAgoMs: fc.option(near(45_000, [t.journal_max_age_seconds * 1000, t.journal_clear_age_seconds * 1000]), { nil: null }),
    }),
    fc.record({
      kind: fc.constant('cache' as const),
      dirty: near(1600, [t.cache_dirty_high_water_bytes, t.cache_dirty_low_water_bytes]),
      free: near(500, [t.cache_min_free_bytes, t.cache_resume_free_bytes]),
    }),
    fc.record({ kind: fc.constant('advance' as const), ms: fc.oneof(fc.integer({ min: 1, max: 20_000 }), fc.constantFrom(1, 999, 1000)) }),
    fc.constant({ kind: 'again' as const }),
  );
}

interface View {
  journal: boolean;
  dirty: boolean;
  disk: boolean;
}

function view(s: Setup): View {
  const st = s.coordinator.status();
  return { journal: st.journal.engaged, dirty: st.cache.reasons.includes('dirty_bytes'), disk: st.cache.reasons.includes('disk_free') };
}

/** Where each input stands against the (normalised) thresholds, computed independently of the rules module. */
function position(t: Thresholds, s: Setup) {
  const j = s.journal.state;
  const age = j.oldestPendingTimestampMs === null ? null : s.clock.now() - j.oldestPendingTimestampMs;
  const hb = t.journal_high_water_bytes;
  const he = t.journal_high_water_entries;
  const maxMs = t.journal_max_age_seconds * 1000;
  const journalAbove = (hb > 0 && j.pendingBytes >= hb) || (he > 0 && j.pendingEntries >= he) || (age !== null && age >= maxMs);
  const journalBelow =
    // Seed 001: every low-water check gates the clear, also one whose trigger is disabled.
    j.pendingBytes <= t.journal_low_water_bytes &&
    j.pendingEntries <= t.journal_low_water_entries &&
    (age === null || age <= t.journal_clear_age_seconds * 1000);
  const c = s.cache.state;
  const dh = t.cache_dirty_high_water_bytes;
  const dirtyAbove = dh > 0 && c.dirtyBytes >= dh;
  const dirtyBelow = dh === 0 || (t.cache_dirty_low_water_bytes === 0 ? c.dirtyBytes < dh : c.dirtyBytes <= t.cache_dirty_low_water_bytes);
  const free = c.diskFreeBytes ?? Infinity;
  const diskAbove = t.cache_min_free_bytes > 0 && free < t.cache_min_free_bytes;
  const diskBelow = t.cache_min_free_bytes === 0 || free >= t.cache_resume_free_bytes;
  return { journalAbove, journalBelow, dirtyAbove, dirtyBelow, diskAbove, diskBelow };
}

/** One reason's rule: on when above; off when below (and not above); otherwise unchanged. */
function expected(before: boolean, above: boolean, below: boolean): boolean {
  if (above) return true;
  if (below) return false;
  return before;
}

describe('hysteresis (property)', () => {
  it('the state changes only when a threshold is crossed, never inside the band', () => {
    fc.assert(
      fc.property(thresholdsArb.chain((t) => fc.tuple(fc.constant(t), fc.array(stepArb(t), { minLength: 1, maxLength: 60 }))), ([thresholds, steps]) => {
        const s = setup(thresholds);
        const t = s.coordinator.thresholds;
        let before = view(s);
        let transitions = 0;
        for (const step of steps) {
          if (step.kind === 'journal') {
            const pending = step.bytes > 0 || step.entries > 0;
            s.journal.set({
              pendingBytes: step.bytes,
              pendingEntries: step.entries,
              oldestPendingTimestampMs: pending && step.oldestAgoMs !== null ? s.clock.now() - step.oldestAgoMs : null,
            });
          } else if (step.kind === 'cache') {
            s.cache.set({ dirtyBytes: step.dirty, diskFreeBytes: step.free });
          } else if (step.kind === 'advance') {
            s.clock.advance(step.ms);
          } else {
            s.coordinator.evaluate();
          }
          const after = view(s);
          const p = position(t, s);
          assert.equal(after.journal, expected(before.journal, p.journalAbove, p.journalBelow && !p.journalAbove), `journal after ${JSON.stringify(step)}`);
          assert.equal(after.dirty, expected(before.dirty, p.dirtyAbove, p.dirtyBelow && !p.dirtyAbove), `dirty_bytes after ${JSON.stringify(step)}`);
          assert.equal(after.disk, expected(before.disk, p.diskAbove, p.diskBelow && !p.diskAbove), `disk_free after ${JSON.stringify(step)}`);
          assert.equal(s.coordinator.gate.isOpen, !(after.journal || after.dirty || after.disk));
          if (step.kind === 'again') assert.deepEqual(after, before, 'evaluating again with the same inputs changes nothing');
          transitions += Number(after.journal !== before.journal) + Number(after.dirty !== before.dirty) + Number(after.disk !== before.disk);
          before = after;
        }
        assert.ok(transitions <= steps.length * 3);
        s.coordinator.close();
      }),
      { numRuns: 400 },
    );
  });
});
