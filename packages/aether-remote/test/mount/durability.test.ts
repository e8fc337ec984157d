/**
 * Issue 5: the durability contract under `kill -9` at random moments (DESIGN §4). A writer child
 * creates files of deterministic content; the mount is killed while it writes, remounted on the
 * same state directory, and every acknowledged file must be there byte for byte. The state
 * directory is reused across rounds, so later rounds also replay the damage of earlier ones.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it, type TestContext } from 'node:test';
import { contentFor, sizeFor } from './fixtures/content.js';
import { seededRandom } from '../seeded-random.js';
import { killSeed, mountSuite, startMount, stopCleanly, waitDrained, type MountProcess } from './harness.js';

const ROUNDS = 10;
const KILL_AFTER_MS_MIN = 50;
const KILL_AFTER_MS_MAX = 500;
const WRITER_EXIT_TIMEOUT_MS = 10_000;
const writerScript = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'writer.js');

type Policy = 'immediate' | 'interval' | 'manual';

/** What the tests know about a file the writer started. */
interface Known {
  acked: boolean;
  /** Under `immediate` a returned create and every returned write are durable: the file has at least this many bytes (null: no promise). */
  durableBytes: number | null;
  /** Its length the first time a remount showed it (null: absent then), once seen: it must not change. */
  seenBytes?: number | null;
}

/** Checks the mount against what the writer reported; records what in-flight files looked like. */
function verify(mnt: string, known: Map<string, Known>, where: string): { acked: number; partial: number; absent: number } {
  const counts = { acked: 0, partial: 0, absent: 0 };
  for (const name of readdirSync(mnt)) assert.ok(known.has(name), `${where}: ${name} was never created`);
  for (const [name, k] of known) {
    const path = join(mnt, name);
    const expected = contentFor(name);
    const got = existsSync(path) ? readFileSync(path) : null;
    if (k.acked) {
      assert.ok(got, `${where}: acknowledged file ${name} is missing`);
      assert.equal(got.length, expected.length, `${where}: acknowledged file ${name} has the wrong size`);
      assert.ok(got.equals(expected), `${where}: acknowledged file ${name} has wrong bytes`);
      counts.acked++;
      continue;
    }
    if (got) {
      assert.ok(got.length <= expected.length, `${where}: ${name} is longer (${got.length}) than ever written (${expected.length})`);
      assert.ok(got.equals(expected.subarray(0, got.length)), `${where}: ${name} holds bytes that were never written`);
    }
    if (k.durableBytes !== null) {
      assert.ok(got, `${where}: ${name} was created under immediate but is missing`);
      assert.ok(got.length >= k.durableBytes, `${where}: ${name} has ${got.length} bytes, but writes up to ${k.durableBytes} returned under immediate`);
    }
    const length = got ? got.length : null;
    if (k.seenBytes !== undefined) assert.equal(length, k.seenBytes, `${where}: ${name} changed since an earlier restart showed it`);
    k.seenBytes = length;
    if (got) counts.partial++;
    else counts.absent++;
  }
  return counts;
}

/**
 * Runs the writer and kills the mount `killAfterMs` after the writer is ready: from the test at
 * that moment (`test`: anywhere in a write, a create, a flush or a drain), from the writer right
 * after its first acknowledgement past it (`writer`), or from the test a little after a SIGTERM
 * (`stop`: somewhere in the clean shutdown). Returns the writer's report.
 */
async function writeAndKill(m: MountProcess, prefix: string, ack: 'close' | 'fsync', killAfterMs: number, by: 'test' | 'writer' | 'stop'): Promise<string[]> {
  const args = [writerScript, m.mnt, prefix, ack, ...(by === 'writer' ? [String(m.proc.pid), String(killAfterMs)] : [])];
  const w = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  w.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  w.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  // 'close': the report is read to its end.
  const exited = new Promise<number | null>((resolve) => w.once('close', (code) => resolve(code)));
  if (by !== 'writer') {
    await new Promise<void>((resolve, reject) => {
      w.stdout.on('data', () => out.startsWith('ready\n') && resolve());
      void exited.then((code) => reject(new Error(`the writer exited (${code}) before it was ready: ${err}`)));
    });
    await new Promise((r) => setTimeout(r, killAfterMs));
  }
  const timeout = setTimeout(() => w.kill('SIGKILL'), killAfterMs + WRITER_EXIT_TIMEOUT_MS);
  if (by === 'stop') {
    m.proc.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, killAfterMs / 5));
  }
  const code = await (by !== 'writer' ? m.kill9().then(() => exited) : exited);
  clearTimeout(timeout);
  await m.kill9();
  assert.equal(code, 0, `the writer did not stop by itself after the kill:\n${err}`);
  const lines = out.trim().split('\n');
  if (by === 'writer') assert.ok(lines.includes(`killed ${m.proc.pid}`), 'the writer must have killed the mount');
  assert.match(lines[lines.length - 1] ?? '', /^stopped /, 'the writer must have been stopped by the dead mount');
  return lines;
}

/** Folds the writer's report into what is known. */
function learn(known: Map<string, Known>, lines: string[], policy: Policy): { opened: number; acked: number } {
  let opened = 0;
  let acked = 0;
  for (const line of lines) {
    const [what, name, n] = line.split(' ');
    if (what === 'create') {
      known.set(name!, { acked: false, durableBytes: null });
      opened++;
    } else if (what === 'open' && policy === 'immediate') known.get(name!)!.durableBytes = 0;
    else if (what === 'wrote' && policy === 'immediate') known.get(name!)!.durableBytes = Number(n);
    else if (what === 'ok') {
      assert.equal(Number(n), sizeFor(name!));
      known.get(name!)!.acked = true;
      acked++;
    }
  }
  return { opened, acked };
}

/** Lines a healthy mount never logs, whatever it recovered from. */
function assertHealthyLog(m: MountProcess): void {
  assert.doesNotMatch(m.stderr(), /store refused|drain failed|handler failed|does not apply|cache update of inode/, m.stderr());
}

describe('kill -9 at random moments loses no acknowledged write', () => {
  const suite = mountSuite();

  const seed = killSeed();

  for (const policy of ['immediate', 'interval', 'manual'] as const) {
    it(`sync policy ${policy}: ${ROUNDS} rounds on one state directory`, async (t: TestContext) => {
      const rand = seededRandom(seed + policy.length);
      t.diagnostic(`seed ${seed} (AETHER_KILL_SEED replays it)`);
      const base = suite.dir(`aether-kill-${policy}-`);
      // Small journal segments: kills also land in segment rollovers and the release of committed ones.
      const env = { AFS_AETHER_JOURNAL_SYNC_POLICY: policy, AFS_AETHER_JOURNAL_SEGMENT_BYTES: String(256 * 1024) };
      const opts = { mnt: join(base, 'mnt'), stateDir: join(base, 'state'), env };
      const known = new Map<string, Known>();
      const ack = policy === 'immediate' ? 'close' : 'fsync';
      let totalAcked = 0;
      for (let round = 0; round < ROUNDS; round++) {
        const m = await startMount(opts);
        verify(m.mnt, known, `round ${round}, after the restart`);
        assertHealthyLog(m);
        const killAfterMs = Math.round(KILL_AFTER_MS_MIN + rand() * (KILL_AFTER_MS_MAX - KILL_AFTER_MS_MIN));
        const by = (['test', 'writer', 'stop'] as const)[round % 3]!;
        const lines = await writeAndKill(m, `r${round}`, ack, killAfterMs, by);
        const { opened, acked } = learn(known, lines, policy);
        totalAcked += acked;
        const how = { test: 'by the test', writer: 'by the writer', stop: 'during a SIGTERM stop' }[by];
        t.diagnostic(`round ${round}: killed ${how} after ${killAfterMs} ms; ${acked} files acknowledged, ${opened - acked} in flight`);
        assertHealthyLog(m);
      }
      // Finally everything drains into the store and reads back from it alone.
      const m = await startMount(opts);
      const counts = verify(m.mnt, known, 'after the last restart');
      t.diagnostic(`after ${ROUNDS} kills: ${counts.acked} acknowledged files intact, ${counts.partial} partial and ${counts.absent} absent in-flight files`);
      assert.equal(counts.acked, totalAcked);
      assert.ok(totalAcked >= ROUNDS, `only ${totalAcked} files were acknowledged in ${ROUNDS} rounds: the test proves little`);
      await waitDrained(m);
      await stopCleanly(m);
      const clean = await startMount(opts);
      assert.equal(clean.ctl(['cache', 'clear']).code, 0);
      verify(clean.mnt, known, 'from the store after a clean restart');
      assertHealthyLog(m);
      assertHealthyLog(clean);
      await stopCleanly(clean);
    });
  }
});
