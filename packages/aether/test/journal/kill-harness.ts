import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Journal } from '../../src/runtime/journal/journal.js';
import type { SyncPolicy } from '../../src/runtime/journal/sync.js';
import { collect, payloadFor, prng, tempStateDir, typeFor } from './helpers.js';

const APPENDER = fileURLToPath(new URL('./fixtures/appender.js', import.meta.url));
const SEGMENT_BYTES = 16384;

interface Round {
  ready: boolean;
  acks: number[];
  flushedUpTo: number;
  stderr: string;
}

/** Runs the appender until SIGKILL after `killAfterMs` (counted from spawn, or from ready). */
function runChild(stateDir: string, policy: SyncPolicy, killAfterMs: number, fromReady: boolean): Promise<Round> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [APPENDER, stateDir, policy, String(SEGMENT_BYTES)], { stdio: ['ignore', 'pipe', 'pipe'] });
    const round: Round = { ready: false, acks: [], flushedUpTo: 0, stderr: '' };
    let buffered = '';
    let timer: NodeJS.Timeout | undefined;
    const kill = (): void => {
      child.kill('SIGKILL');
    };
    if (!fromReady) timer = setTimeout(kill, killAfterMs);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const [what, value] = buffered.slice(0, nl).split(' ');
        buffered = buffered.slice(nl + 1);
        if (what === 'ready') {
          round.ready = true;
          if (fromReady) timer = setTimeout(kill, killAfterMs);
        } else if (what === 'ack') round.acks.push(Number(value));
        else if (what === 'flushed') round.flushedUpTo = Math.max(round.flushedUpTo, Number(value));
      }
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (s: string) => (round.stderr += s));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (signal !== 'SIGKILL') reject(new Error(`appender exited by itself (code ${code}): ${round.stderr}`));
      else resolve(round);
    });
  });
}

/**
 * Kills an appender with SIGKILL at random moments, `rounds` times on one journal, and checks
 * after each kill that every acknowledged record (and every record covered by an acknowledged
 * flush) is there byte for byte, that the log is contiguous, and that nothing was invented.
 */
export async function killRounds(policy: SyncPolicy, rounds: number, seed: number): Promise<{ acked: number; tornTails: number }> {
  const random = prng(seed);
  const stateDir = tempStateDir();
  const mustHave = new Set<number>();
  let totalAcked = 0;
  let tornTails = 0;
  for (let r = 0; r < rounds; r++) {
    // Some kills land during start-up and recovery, most while the writers are busy.
    const early = random() < 0.25;
    const killAfterMs = early ? Math.floor(random() * 60) : 20 + Math.floor(random() * 200);
    const round = await runChild(stateDir, policy, killAfterMs, !early);
    const where = `policy ${policy}, seed ${seed}, round ${r}`;
    for (const seq of round.acks) mustHave.add(seq);
    totalAcked += round.acks.length;

    const journal = await Journal.open({ dir: `${stateDir}/journal`, sync: { policy: 'manual', intervalMs: 5, backlogBytes: 0 }, segmentBytes: SEGMENT_BYTES });
    if (journal.recovery.tornTail) tornTails++;
    const committed = journal.committedSeq;
    const entries = await collect(journal);
    await journal.close();

    entries.forEach((e, i) => {
      assert.equal(e.seq, committed + 1 + i, `${where}: the log has a gap before ${e.seq}`);
      assert.equal(e.type, typeFor(e.seq), `${where}: entry ${e.seq} has the wrong type`);
      assert.ok(e.payload.equals(payloadFor(e.seq)), `${where}: entry ${e.seq} does not hold its payload`);
    });
    const lastSeq = committed + entries.length;
    for (const seq of mustHave) {
      if (seq > committed) assert.ok(seq <= lastSeq, `${where}: acknowledged entry ${seq} is lost (log ends at ${lastSeq}, committed ${committed})`);
    }
    assert.ok(round.flushedUpTo <= Math.max(lastSeq, committed), `${where}: flushed entries up to ${round.flushedUpTo} are lost (log ends at ${lastSeq})`);
    for (const seq of mustHave) if (seq <= committed) mustHave.delete(seq);
  }
  return { acked: totalAcked, tornTails };
}
