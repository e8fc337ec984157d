import assert from 'node:assert/strict';
import { it } from 'node:test';
import { killRounds } from './kill-harness.js';

it('kill -9 under interval: records covered by a completed flush (and every written append) survive', { timeout: 120_000 }, async (t) => {
  const seed = Number(process.env.AETHER_KILL_SEED ?? Date.now() % 1_000_000);
  const { acked, tornTails } = await killRounds('interval', 24, seed);
  t.diagnostic(`seed ${seed}: ${acked} acknowledged appends over 24 kills, ${tornTails} torn tails cut`);
  assert.ok(acked > 500, `too few acknowledged appends (${acked}) for the test to mean anything`);
});
