import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { bytes, openCache } from './helpers.js';

// A reference model of one file, byte by byte, driven with the same random operations as a real
// cache on disk (blocks of 16 bytes, so most operations cross blocks). After every step the exact
// dirty/clean byte counts, the bytes read back, and the holes reported must match the model.

type Op =
  | { op: 'write'; offset: number; length: number; seed: number }
  | { op: 'putClean'; offset: number; length: number; seed: number }
  | { op: 'commit'; back: number }
  | { op: 'truncate'; size: number }
  | { op: 'invalidate' };

const SPAN = 120;
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('write' as const), offset: fc.nat(SPAN), length: fc.integer({ min: 1, max: 40 }), seed: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('putClean' as const), offset: fc.nat(SPAN), length: fc.integer({ min: 1, max: 40 }), seed: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('commit' as const), back: fc.nat(4) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('truncate' as const), size: fc.nat(SPAN + 40) }) },
  { weight: 1, arbitrary: fc.constant({ op: 'invalidate' as const }) },
);

interface ByteState {
  kind: 'hole' | 'clean' | 'dirty';
  seq: number;
  value: number;
}

describe('cache against a byte-by-byte model (property)', () => {
  it('accounting, contents and holes match after every operation', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 25 }), async (ops) => {
        const h = await openCache({ blockBytes: 16 });
        const model: ByteState[] = Array.from({ length: SPAN + 40 }, () => ({ kind: 'hole', seq: -1, value: 0 }));
        let seq = 0;
        let committed = -1;
        try {
          for (const o of ops) {
            if (o.op === 'write') {
              seq++;
              const data = bytes(o.length, o.seed);
              await h.cache.write(7, o.offset, data, seq);
              for (let i = 0; i < o.length; i++) model[o.offset + i] = { kind: seq <= committed ? 'clean' : 'dirty', seq, value: data[i] as number };
            } else if (o.op === 'putClean') {
              const data = bytes(o.length, o.seed);
              await h.cache.putClean(7, o.offset, data);
              for (let i = 0; i < o.length; i++) if ((model[o.offset + i] as ByteState).kind === 'hole') model[o.offset + i] = { kind: 'clean', seq: -1, value: data[i] as number };
            } else if (o.op === 'commit') {
              const upTo = seq - o.back;
              h.cache.commit(upTo);
              committed = Math.max(committed, upTo);
              for (const b of model) if (b.kind === 'dirty' && b.seq <= upTo) b.kind = 'clean';
            } else if (o.op === 'truncate') {
              await h.cache.truncate(7, o.size);
              for (let i = o.size; i < model.length; i++) model[i] = { kind: 'hole', seq: -1, value: 0 };
            } else {
              await h.cache.invalidate(7);
              for (let i = 0; i < model.length; i++) if ((model[i] as ByteState).kind === 'clean') model[i] = { kind: 'hole', seq: -1, value: 0 };
            }
            const st = h.cache.stats();
            assert.equal(st.dirty_bytes, model.filter((b) => b.kind === 'dirty').length, `dirty after ${JSON.stringify(o)}`);
            assert.equal(st.clean_bytes, model.filter((b) => b.kind === 'clean').length, `clean after ${JSON.stringify(o)}`);
            const r = await h.cache.read(7, 0, model.length);
            const holes: number[] = [];
            for (const hole of r.holes) for (let i = 0; i < hole.length; i++) holes.push(hole.offset + i);
            assert.deepEqual(holes, model.flatMap((b, i) => (b.kind === 'hole' ? [i] : [])), `holes after ${JSON.stringify(o)}`);
            assert.deepEqual([...r.data], model.map((b) => (b.kind === 'hole' ? 0 : b.value)), `data after ${JSON.stringify(o)}`);
          }
        } finally {
          await h.cache.close();
          rmSync(h.dir, { recursive: true, force: true });
        }
      }),
      { numRuns: 150 },
    );
  });
});
