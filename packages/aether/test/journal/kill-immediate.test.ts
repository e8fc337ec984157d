import assert from 'node:assert/strict';
import { it } from 'node:test';
import { killRounds } from './kill-harness.js';

it('kill -9 under immediate: every acknowledged append survives, byte for byte, and nothing is invented', { timeout: 120_000 }, async (t) => {
  const seed = Number(process.env.AETHER_KILL_SEED ?? Date.now() % 1_000_000);
  const { acked, tornTails } = await killRounds('immediate', 24, seed);
  t.diagnostic(`seed ${seed}: ${acked} acknowledged appends over 24 kills, ${tornTails} torn tails cut`);
  assert.ok(acked > 200, `too few acknowledged appends (${acked}) for the test to mean anything`);
});
