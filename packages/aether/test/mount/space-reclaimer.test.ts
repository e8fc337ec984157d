import assert from 'node:assert/strict';
import { describe, it, mock } from 'node:test';
import { Registry } from 'prom-client';
import { RECLAIM_COPY_BUDGET, RECLAIM_EVERY_MS, SpaceReclaimer } from '../../src/mount/space-reclaimer.js';

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
          return { droppedChunks: 1, deletedPacks: [runs.length], freedBytes: 1000, copiedBytes: 0, packBytes: 5000 - runs.length };
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
});
