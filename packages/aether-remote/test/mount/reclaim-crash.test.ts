/**
 * Giving back store space is crash-safe: `aether store reclaim` runs while the mount is killed
 * (kill -9) at random moments; after each remount every kept file reads back byte for byte, and
 * in the end the dead data is gone all the same.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { seededRandom } from '../seeded-random.js';
import { killSeed, mountSuite, startMount, stopCleanly, type MountProcess } from './harness.js';

const ROUNDS = 6;
const digest = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe('store reclaim and kill -9', () => {
  const suite = mountSuite();

  it(`kill -9 during reclaim, ${ROUNDS} rounds: every kept file survives, and the space comes back in the end`, async (t) => {
    const seed = killSeed();
    const rnd = seededRandom(seed);
    const bytes = (n: number): Buffer => {
      const b = Buffer.alloc(n);
      for (let i = 0; i < n; i += 4) b.writeUInt32LE(Math.floor(rnd() * 2 ** 32), i);
      return b;
    };
    const base = suite.dir('aether-reclaim-');
    const opts = { mnt: join(base, 'mnt'), stateDir: join(base, 'state') };
    const kept = new Map<string, string>();
    let m: MountProcess = await startMount(opts);
    let serial = 0;
    let cut = 0;
    /** Files written, two thirds of them removed again, one kept file rewritten: garbage in every pack. */
    const churn = (): void => {
      for (let i = 0; i < 24; i++) {
        const name = `f${serial++}`;
        const data = bytes(i % 3 === 0 ? 40_000 : 700_000);
        writeFileSync(join(m.mnt, name), data);
        if (i % 3 === 0) kept.set(name, digest(data));
      }
      for (let i = serial - 24; i < serial; i++) if (!kept.has(`f${i}`)) unlinkSync(join(m.mnt, `f${i}`));
      const rewrite = [...kept.keys()][Math.floor(rnd() * kept.size)]!;
      const data = bytes(300_000);
      writeFileSync(join(m.mnt, rewrite), data);
      kept.set(rewrite, digest(data));
    };
    const check = (round: number): void => {
      assert.deepEqual(readdirSync(m.mnt).sort(), [...kept.keys()].sort(), `round ${round}, seed ${seed}`);
      for (const [name, sum] of kept) assert.equal(digest(readFileSync(join(m.mnt, name))), sum, `${name} after round ${round}, seed ${seed}`);
    };
    for (let round = 0; round < ROUNDS; round++) {
      churn();
      assert.equal(m.ctl(['sync', 'wait']).code, 0);
      // Straight to the control socket: the CLI's own start-up would outlast the reclaim.
      const sock = createConnection(join(opts.stateDir, 'control.sock'));
      let replied = false;
      sock.on('data', () => (replied = true)).on('error', () => undefined);
      sock.write('{"cmd":"STORE RECLAIM"}\n');
      await new Promise((r) => setTimeout(r, Math.floor(rnd() * 30)));
      await m.kill9();
      sock.destroy();
      if (!replied) cut++;
      m = await startMount(opts);
      check(round);
    }
    assert.equal(m.ctl(['store', 'reclaim']).code, 0);
    const packs = join(opts.stateDir, 'store', 'packs');
    const size = readdirSync(packs).reduce((sum, f) => sum + statSync(join(packs, f)).size, 0);
    const live = [...kept.keys()].reduce((sum, name) => sum + statSync(join(m.mnt, name)).size, 0);
    assert.ok(size < live * 1.5 + (4 << 20), `packs ${size} bytes for ${live} live bytes, seed ${seed}`);
    check(ROUNDS);
    await stopCleanly(m);
    t.diagnostic(`seed ${seed}: ${cut} of ${ROUNDS} reclaims were cut short by the kill`);
  });
});
