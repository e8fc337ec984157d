import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { AllocatedRanges } from '../../src/tree/allocated-ranges.js';

type Step = { t: 'mark'; start: number; len: number } | { t: 'truncate'; end: number };

/** The pairs a set of units makes: sorted, disjoint, touching ones merged. */
function pairsOf(units: Set<number>): number[] {
  const sorted = [...units].sort((a, b) => a - b);
  const out: number[] = [];
  for (const u of sorted) {
    if (out.length > 0 && out[out.length - 1] === u) out[out.length - 1] = u + 1;
    else out.push(u, u + 1);
  }
  return out;
}

describe('AllocatedRanges against a set of units', () => {
  it('any sequence of marks and truncates gives the same pairs and total as the set', () => {
    const step: fc.Arbitrary<Step> = fc.oneof(
      { weight: 5, arbitrary: fc.record({ t: fc.constant('mark' as const), start: fc.nat(200), len: fc.nat(12) }) },
      { weight: 1, arbitrary: fc.record({ t: fc.constant('truncate' as const), end: fc.nat(220) }) },
    );
    fc.assert(
      fc.property(fc.array(step, { maxLength: 80 }), (steps) => {
        const r = new AllocatedRanges();
        const model = new Set<number>();
        for (const s of steps) {
          if (s.t === 'mark') {
            r.mark(s.start, s.start + s.len);
            for (let u = s.start; u < s.start + s.len; u++) model.add(u);
          } else {
            r.truncate(s.end);
            for (const u of [...model]) if (u >= s.end) model.delete(u);
          }
          assert.deepEqual(r.toArray(), pairsOf(model));
          assert.equal(r.units, model.size);
        }
      }),
      { numRuns: 500 },
    );
  });
});
