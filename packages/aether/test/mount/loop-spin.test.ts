import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LoopSpin } from '../../src/mount/loop-spin.js';

/** A LoopSpin on a hand-driven clock and queue: `tick(ns)` advances time and runs one queued turn. */
function driven(windowNs: bigint) {
  let now = 0n;
  const queue: (() => void)[] = [];
  const spin = new LoopSpin(windowNs, () => now, (fn) => queue.push(fn));
  const tick = (ns: bigint): void => {
    now += ns;
    queue.shift()?.();
  };
  return { spin, queue, tick };
}

describe('LoopSpin', () => {
  it('polls until the window after the last request has passed, then lets the loop sleep', () => {
    const { spin, queue, tick } = driven(1000n);
    spin.poke();
    assert.equal(spin.active, true);
    assert.equal(queue.length, 1);
    tick(400n);
    assert.equal(queue.length, 1, 'still inside the window: polled again');
    tick(400n);
    tick(400n);
    assert.equal(spin.active, false);
    assert.equal(queue.length, 0, 'past the window: nothing keeps the loop awake');
  });

  it('a request during the window extends it, with one chain of turns', () => {
    const { spin, queue, tick } = driven(1000n);
    spin.poke();
    tick(900n);
    spin.poke();
    assert.equal(queue.length, 1, 'no second chain');
    tick(900n);
    assert.equal(spin.active, true, '1800 ns after the first request, 900 after the second');
    tick(200n);
    assert.equal(spin.active, false);
    spin.poke();
    assert.equal(spin.active, true, 'a later request starts a new window');
  });

  it('a window of 0 never polls', () => {
    const { spin, queue } = driven(0n);
    spin.poke();
    assert.equal(spin.active, false);
    assert.equal(queue.length, 0);
  });

  it('on the real event loop the chain ends by itself', async () => {
    const spin = new LoopSpin(2_000_000n);
    spin.poke();
    assert.equal(spin.active, true);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(spin.active, false);
  });
});
