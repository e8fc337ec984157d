import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../../src/runtime/infra/clock.js';
import type { SyncSettings } from '../../src/runtime/journal/sync.js';
import { collect, immediate, interval, manual, openMemoryJournal, payloadFor, prng, settle, typeFor } from './helpers.js';
import { MemoryFs } from './memory-fs.js';

const POLICIES: SyncSettings[] = [immediate(), interval(5, 8192), manual()];

/** One record in ten is large enough to take the writer's thread-pool path. */
const maxBytesFor = (seq: number): number => (seq % 10 === 7 ? 80_000 : 1500);

/**
 * Drives a journal through random appends, flushes, commits, policy switches and deadlines on
 * a file system that keeps only what was fsynced, and pulls the plug at random moments (with
 * appends and flushes still in flight). After each power loss: every append acknowledged under
 * `immediate`, every entry covered by a completed flush or interval deadline, and the last
 * durable commit must be there, and nothing else may appear.
 */
async function powerLossRun(seed: number, crashes: number): Promise<number> {
  const random = prng(seed);
  let fs = new MemoryFs();
  const clock = new ManualClock();
  let settings = POLICIES[0] as SyncSettings;
  let mustHaveThrough = 0; // every entry up to this one must survive (unless committed)
  const ackedImmediate = new Set<number>();
  let committedDurable = 0;
  let checked = 0;
  // The journal abandoned at a power loss keeps running on the old file system; what it
  // acknowledges after the plug was pulled must not count.
  let alive = true;
  for (let c = 0; c < crashes; c++) {
    alive = true;
    const live = (): boolean => alive;
    const ackedThisRun = new Set<number>();
    const { journal } = await openMemoryJournal(settings, { fs, clock, segmentBytes: 4096 + Math.floor(random() * 8192) });
    const where = `seed ${seed}, crash ${c}`;
    const steps = 5 + Math.floor(random() * 20);
    for (let s = 0; s < steps; s++) {
      const op = random();
      if (op < 0.5) {
        const n = 1 + Math.floor(random() * 12);
        const policy = journal.syncSettings.policy;
        for (let i = 0; i < n; i++) {
          const seq = journal.lastSeq + 1;
          journal.append(typeFor(seq), payloadFor(seq, maxBytesFor(seq))).then(
            () => {
              if (live()) ackedThisRun.add(seq);
              if (policy === 'immediate' && live()) ackedImmediate.add(seq);
            },
            () => undefined,
          );
        }
      } else if (op < 0.65) {
        const upTo = journal.lastSeq;
        journal.flush().then(
          () => {
            if (live()) mustHaveThrough = Math.max(mustHaveThrough, upTo);
          },
          () => undefined,
        );
      } else if (op < 0.8 && journal.lastSeq > 0) {
        const seq = Math.floor(random() * (journal.lastSeq + 1));
        journal.commit(seq).then(
          () => {
            if (live()) committedDurable = Math.max(committedDurable, seq);
          },
          () => undefined,
        );
      } else if (op < 0.9) {
        settings = POLICIES[Math.floor(random() * POLICIES.length)] as SyncSettings;
        const upTo = journal.lastSeq;
        // Only a change of policy flushes first.
        const switched = settings.policy !== journal.syncSettings.policy;
        journal.applySyncConfig(settings).then(
          () => {
            if (live() && switched) mustHaveThrough = Math.max(mustHaveThrough, upTo);
          },
          () => undefined,
        );
      } else {
        const upTo = journal.lastSeq;
        const wasInterval = journal.syncSettings.policy === 'interval';
        clock.advance(5);
        await journal.idle();
        // Under interval, a deadline has passed since these were appended: they are durable now.
        if (wasInterval && journal.syncSettings.policy === 'interval') mustHaveThrough = Math.max(mustHaveThrough, upTo);
      }
      for (let k = Math.floor(random() * 4); k > 0; k--) await settle();
    }
    // Power loss (or, one time in three, a kill of the process), with whatever is still in flight.
    const powerLoss = random() < 0.67;
    fs = powerLoss ? fs.crash(random) : fs.killProcess();
    alive = false;
    const after = await openMemoryJournal(settings, { fs, clock, segmentBytes: 4096 });
    const committed = after.journal.committedSeq;
    const detail = (): string => JSON.stringify(after.journal.recovery);
    assert.ok(committed >= committedDurable, `${where}: durable commit ${committedDurable} went back to ${committed}`);
    const entries = await collect(after.journal);
    entries.forEach((e, i) => {
      assert.equal(e.seq, committed + 1 + i, `${where}: gap before ${e.seq}`);
      assert.ok(e.payload.equals(payloadFor(e.seq, maxBytesFor(e.seq))) && e.type === typeFor(e.seq), `${where}: entry ${e.seq} is not what was appended`);
    });
    const lastSeq = Math.max(committed, after.journal.lastSeq);
    assert.ok(mustHaveThrough <= lastSeq, `${where}: flushed entries up to ${mustHaveThrough} lost; the log ends at ${lastSeq}; recovery ${detail()}`);
    // A killed process loses nothing the OS had: every acknowledged append of any policy is there.
    if (!powerLoss) for (const seq of ackedThisRun) assert.ok(seq <= lastSeq, `${where}: entry ${seq} acknowledged before a kill is lost; recovery ${detail()}`);
    for (const seq of ackedImmediate) assert.ok(seq <= lastSeq, `${where}: immediate-acknowledged entry ${seq} lost; the log ends at ${lastSeq}; recovery ${detail()}`);
    checked += entries.length;
    await after.journal.close();
    fs = after.fs;
  }
  return checked;
}

describe('power loss (simulated: only fsynced bytes and names survive)', () => {
  // AETHER_POWER_LOSS_SEEDS=500 makes this a soak test.
  const seeds = Number(process.env.AETHER_POWER_LOSS_SEEDS ?? 8);
  for (let seed = 1; seed <= seeds; seed++) {
    it(`seed ${seed}: acknowledged and flushed entries survive, nothing is invented`, async () => {
      const checked = await powerLossRun(seed, 15);
      assert.ok(checked > 0);
    });
  }
});
