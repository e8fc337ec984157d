import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SettleWatermark } from '../../src/mount/settle-watermark.js';

const turn = () => new Promise((r) => setImmediate(r));

function deferred() {
  let resolve!: () => void;
  let reject!: (e: Error) => void;
  const p = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
  return { p, resolve, reject };
}

describe('SettleWatermark', () => {
  it('waits for every operation tagged up to a seq, whatever order they settle in, failures included', async () => {
    const w = new SettleWatermark();
    assert.equal(w.through(10), null, 'nothing in flight');
    const ops = [3, 5, 5, 8].map((seq) => ({ seq, ...deferred() }));
    for (const o of ops) w.track(o.seq, o.p);
    assert.equal(w.through(2), null);
    const passed: number[] = [];
    for (const seq of [3, 5, 7, 8]) void w.through(seq)!.then(() => passed.push(seq));
    ops[2]!.resolve(); // one of the two 5s, before the 3
    ops[3]!.reject(new Error('failed')); // 8 settles by failing
    await turn();
    assert.deepEqual(passed, []);
    ops[0]!.resolve();
    await turn();
    assert.deepEqual(passed, [3], 'the other 5 is still in flight');
    ops[1]!.resolve();
    await turn();
    assert.deepEqual(passed, [3, 5, 7, 8]);
    assert.equal(w.through(8), null);
  });
});
