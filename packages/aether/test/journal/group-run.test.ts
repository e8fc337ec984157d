import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GroupRun } from '../../src/runtime/journal/group-run.js';
import { latch, settle } from './helpers.js';

describe('group run (group commit)', () => {
  it('callers during a run share the next one; beforeStart readies each run just before it starts', async () => {
    const events: string[] = [];
    const gate = latch();
    let runs = 0;
    const g = new GroupRun(
      async () => {
        const n = ++runs;
        events.push(`start ${n}`);
        if (n === 1) await gate.wait;
        return n;
      },
      () => events.push('before'),
    );
    const a = g.run();
    const b = g.run();
    const c = g.run();
    assert.equal(b, c, 'both wait for the same queued run');
    gate.open();
    assert.deepEqual(await Promise.all([a, b, c]), [1, 2, 2]);
    assert.deepEqual(events, ['before', 'start 1', 'before', 'start 2']);
  });

  it('a caller that beforeStart leads to run() joins the run about to start, idle or queued', async () => {
    let runs = 0;
    let nested: Promise<number> | null = null;
    let armed = true; // like the writer's queued pump: cleared before it does its work
    const gate = latch();
    const g: GroupRun<number> = new GroupRun(
      async () => {
        const n = ++runs;
        if (n === 1) await gate.wait;
        return n;
      },
      () => {
        // The writer's pump: a record it writes wakes a waiter that asks for a run.
        if (!armed) return;
        armed = false;
        nested = g.run();
      },
    );
    const first = g.run();
    assert.equal(await Promise.race([first, settle().then(() => 'pending')]), 'pending');
    assert.equal(runs, 1, 'the nested call from an idle start did not start a second run');
    assert.equal(nested, first, 'it joined the run that started');
    nested = null;
    armed = true;
    const queued = g.run(); // queued behind run 1
    gate.open();
    assert.equal(await first, 1);
    assert.equal(await queued, 2);
    assert.equal(await nested, 2, 'the nested call from the queued start joined run 2');
    assert.equal(runs, 2);
  });
});
