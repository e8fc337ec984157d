import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import { LocalDrain, type DrainJournal, type DrainStore } from '../../src/mount/drain.js';

/** A journal of `lastSeq` durable entries holding `bytes` pending bytes, and a store that records its passes. */
function fakes(): { journal: DrainJournal & { lastSeq: number; bytes: number }; store: DrainStore; passes: number[] } {
  const passes: number[] = [];
  const journal = {
    lastSeq: 0,
    bytes: 0,
    committedSeq: 0,
    get durableSeq() {
      return this.lastSeq;
    },
    spans: (from: number, upTo: number) => [{ path: 'j', offset: 0, endOffset: 1, firstSeq: from, lastSeq: upTo }],
    entries: () => {
      throw new Error('not used by the local drain');
    },
    async commit(seq: number) {
      this.committedSeq = seq;
      this.bytes = 0;
    },
    pending() {
      return { pendingBytes: this.bytes, pendingEntries: this.lastSeq - this.committedSeq };
    },
  };
  const store = {
    appliedSeq: 0,
    async applySpans(spans: { lastSeq: number }[]) {
      store.appliedSeq = spans[spans.length - 1]!.lastSeq;
      passes.push(Date.now());
      return { applied: 1, rejected: [] };
    },
  };
  return { journal, store, passes };
}

const settle = () => new Promise((r) => setImmediate(r));

describe('the local drain: when passes run', () => {
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 }));
  afterEach(() => mock.timers.reset());

  it('a little pending data waits idleDelayMs; once soonBytes are pending the pass comes after delayMs', async () => {
    const { journal, store, passes } = fakes();
    const drain = new LocalDrain(journal, store, () => undefined, () => undefined, { delayMs: 50, idleDelayMs: 500, soonBytes: 1000 });
    journal.lastSeq = 1;
    journal.bytes = 100;
    drain.kick();
    mock.timers.tick(499);
    await settle();
    assert.deepEqual(passes, [], 'no pass before the idle delay');
    mock.timers.tick(1);
    await settle();
    assert.deepEqual(passes, [500]);

    journal.lastSeq = 2;
    journal.bytes = 100;
    drain.kick();
    mock.timers.tick(100);
    journal.lastSeq = 3;
    journal.bytes = 5000;
    drain.kick();
    mock.timers.tick(49);
    await settle();
    assert.deepEqual(passes, [500], 'planned for later until then');
    mock.timers.tick(1);
    await settle();
    assert.deepEqual(passes, [500, 650], 'brought forward when soonBytes became pending');
    await drain.close();
  });

  it('while programs are busy a small pass waits for a pause, at most busyWaitMaxMs', async () => {
    const { journal, store, passes } = fakes();
    let busy = true;
    const drain = new LocalDrain(journal, store, () => undefined, () => undefined, { delayMs: 50, idleDelayMs: 500, soonBytes: 1000, busy: () => busy, busyWaitMaxMs: 2000, now: () => Date.now() });
    journal.lastSeq = 1;
    journal.bytes = 100;
    drain.kick();
    for (let i = 0; i < 24; i++) {
      mock.timers.tick(100);
      await settle();
    }
    mock.timers.tick(99);
    await settle();
    assert.deepEqual(passes, [], 'due at 500, put off while busy');
    mock.timers.tick(1);
    await settle();
    assert.deepEqual(passes, [2500], 'then runs anyway: 2000 ms after it was first put off');

    // The next one waits for the first pause.
    journal.lastSeq = 2;
    drain.kick();
    mock.timers.tick(1000);
    await settle();
    assert.deepEqual(passes, [2500]);
    busy = false;
    mock.timers.tick(500);
    await settle();
    assert.deepEqual(passes, [2500, 4000], 'runs at the first retry after programs paused');
    await drain.close();
  });

  it('while programs are busy, soonBytes pending or a waiter (sync wait, shutdown) still start a pass', async () => {
    const { journal, store, passes } = fakes();
    const drain = new LocalDrain(journal, store, () => undefined, () => undefined, { delayMs: 50, idleDelayMs: 500, soonBytes: 1000, busy: () => true, busyWaitMaxMs: 2000, now: () => Date.now() });
    journal.lastSeq = 1;
    journal.bytes = 5000;
    drain.kick();
    mock.timers.tick(50);
    await settle();
    assert.deepEqual(passes, [50], 'bulk data is not held back');
    journal.lastSeq = 2;
    journal.bytes = 10;
    drain.kick();
    mock.timers.tick(100);
    const idle = drain.whenIdle();
    await settle();
    await idle;
    assert.deepEqual(passes, [50, 150], 'a waiter is not made to wait for a pause');
    await drain.close();
  });

  it('whenIdle (sync wait, shutdown) runs a pass at once, whatever the delay', async () => {
    const { journal, store, passes } = fakes();
    const drain = new LocalDrain(journal, store, () => undefined, () => undefined, { delayMs: 50, idleDelayMs: 500, soonBytes: 1000 });
    journal.lastSeq = 1;
    journal.bytes = 10;
    drain.kick();
    const idle = drain.whenIdle();
    await settle();
    await idle;
    assert.deepEqual(passes, [0]);
    await drain.close();
  });

  it('passes that keep failing are retried from delayMs, doubling up to retryMaxMs; the log gets each new error once and the recovery', async () => {
    const { journal, store, passes } = fakes();
    const attempts: number[] = [];
    let failWith: string | null = 'ENOSPC: no space left on device';
    const apply = store.applySpans.bind(store);
    store.applySpans = async (spans) => {
      attempts.push(Date.now());
      if (failWith) throw new Error(failWith);
      return apply(spans);
    };
    const log: string[] = [];
    const drain = new LocalDrain(journal, store, () => undefined, (l) => log.push(l), { delayMs: 50, idleDelayMs: 50, soonBytes: 1000, retryMaxMs: 400 });
    journal.lastSeq = 1;
    drain.kick();
    for (let t = 0; t < 2000; t += 10) {
      mock.timers.tick(10);
      await settle();
      // Programs keep appending meanwhile: the retries keep their backoff all the same.
      journal.lastSeq++;
      journal.bytes += 100_000;
      drain.kick();
    }
    // Passes at 50, then 50, 100, 200, 400, 400... ms apart.
    assert.deepEqual(attempts.slice(0, 7), [50, 100, 200, 400, 800, 1200, 1600]);
    assert.deepEqual(log, ['drain failed, retrying: ENOSPC: no space left on device'], 'one line for one lasting error');
    assert.equal(drain.lastError, 'ENOSPC: no space left on device');
    failWith = 'EIO: i/o error';
    for (let t = 0; t < 400; t += 10) {
      mock.timers.tick(10);
      await settle();
    }
    assert.equal(log.at(-1), 'drain failed, retrying: EIO: i/o error', 'a different error is logged');
    failWith = null;
    const failures = attempts.length;
    for (let t = 0; t < 400; t += 10) {
      mock.timers.tick(10);
      await settle();
    }
    assert.equal(passes.length, 1, 'the pass succeeds once the store does');
    assert.equal(log.at(-1), `drain recovered after ${failures} failed passes`);
    assert.equal(drain.lastError, null);
    await drain.close();
  });
});
