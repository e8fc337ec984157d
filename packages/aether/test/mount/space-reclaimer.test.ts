import assert from 'node:assert/strict';
import { describe, it, mock } from 'node:test';
import { Registry } from 'prom-client';
import { RECLAIM_COPY_BUDGET, RECLAIM_EVERY_MS, RECLAIM_QUIET_PAUSE_MS, SpaceReclaimer } from '../../src/mount/space-reclaimer.js';

const turn = () => new Promise((r) => setImmediate(r));

describe('SpaceReclaimer: when the store gives space back', () => {
  it('after a commit at most once per RECLAIM_EVERY_MS with the copy budget, on demand without one; deleted packs are let go and counted', async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    let now = 0;
    const runs: number[] = [];
    const forgotten: number[][] = [];
    const registry = new Registry();
    let onDisk = 5000;
    const r = new SpaceReclaimer(
      {
        reclaim: async (budget) => {
          runs.push(budget);
          return { droppedChunks: 1, deletedPacks: [runs.length], freedBytes: 1000, copiedBytes: 0, packBytes: 5000 - runs.length, more: false };
        },
        forgetPacks: (p) => forgotten.push([...p]),
        packBytes: () => onDisk,
      },
      registry,
      () => undefined,
      () => now,
    );
    r.afterCommit();
    await turn();
    assert.deepEqual(runs, [RECLAIM_COPY_BUDGET], 'the first commit runs it');
    now += RECLAIM_EVERY_MS - 1000;
    r.afterCommit();
    r.afterCommit();
    await turn();
    assert.equal(runs.length, 1, 'not again within the interval');
    // ...but once it is over, with no further commit (an idle mount gets its space back too).
    now += 1000;
    mock.timers.tick(1000);
    await turn();
    assert.equal(runs.length, 2, 'the commit that came too soon is served once the interval is over');
    const direct = await r.runNow();
    assert.equal(runs.at(-1), Number.MAX_SAFE_INTEGER, 'on demand: no copy budget');
    assert.deepEqual(direct.deletedPacks, [3]);
    assert.deepEqual(forgotten, [[1], [2], [3]]);
    const text = await registry.metrics();
    assert.match(text, /^aether_store_reclaimed_bytes_total 3000$/m);
    // What is on disk at the scrape, not what the last reclaim run left (commits grow the packs).
    assert.match(text, /^aether_store_pack_bytes 5000$/m);
    onDisk = 7123;
    assert.match(await registry.metrics(), /^aether_store_pack_bytes 7123$/m);
    await r.close();
    now += RECLAIM_EVERY_MS;
    r.afterCommit();
    await turn();
    assert.equal(runs.length, 3, 'nothing after close');
    mock.timers.reset();
  });

  it('a run the budget cut short is followed by the next within a second while the mount is quiet, until nothing is left; a busy mount waits for the interval', async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    let quiet = true;
    let left = 3;
    let runs = 0;
    const r = new SpaceReclaimer(
      {
        reclaim: async () => {
          runs++;
          left--;
          return { droppedChunks: 0, deletedPacks: [], freedBytes: 1, copiedBytes: RECLAIM_COPY_BUDGET, packBytes: 0, more: left > 0 };
        },
        forgetPacks: () => undefined,
        packBytes: () => 0,
        quiet: () => quiet,
      },
      new Registry(),
      () => undefined,
      () => 0,
    );
    r.afterCommit();
    await turn();
    assert.equal(runs, 1);
    for (const expected of [2, 3]) {
      mock.timers.tick(RECLAIM_QUIET_PAUSE_MS);
      await turn();
      assert.equal(runs, expected, 'the next run a second later');
    }
    mock.timers.tick(RECLAIM_QUIET_PAUSE_MS * 5);
    await turn();
    assert.equal(runs, 3, 'nothing left: no more runs');
    // Busy: a run that leaves work does not go on.
    left = 2;
    quiet = false;
    await r.runNow();
    assert.equal(runs, 4);
    mock.timers.tick(RECLAIM_QUIET_PAUSE_MS * 5);
    await turn();
    assert.equal(runs, 4, 'not while busy');
    await r.close();
    mock.timers.reset();
  });
});
