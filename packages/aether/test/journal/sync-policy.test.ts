import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { recordBytes } from '../../src/runtime/journal/record.js';
import { collect, flushCounts, immediate, interval, latch, manual, metricValue, openMemoryJournal, settle } from './helpers.js';

/** Payload size that makes `n` records add up to exactly `total` record bytes (total must allow it). */
function payloadBytesFor(total: number, n: number): number {
  assert.equal(total % n, 0);
  return total / n - recordBytes(0);
}

describe('interval policy', () => {
  it('flushes at the deadline with reason interval, then arms nothing while nothing is unsynced', async () => {
    const { journal, clock, registry, fs } = await openMemoryJournal(interval(5, 0));
    assert.equal(clock.pendingTimers, 0, 'no timer before the first append');
    await journal.append(1, Buffer.alloc(100));
    await journal.append(1, Buffer.alloc(100));
    assert.equal(clock.pendingTimers, 1, 'the first unsynced append arms one deadline');
    assert.equal(journal.unsyncedBytes, 2 * recordBytes(100));
    clock.advance(4);
    await journal.idle();
    assert.deepEqual(await flushCounts(registry), {});
    assert.equal(fs.datasyncCalls, 0);
    clock.advance(1);
    await journal.idle();
    assert.deepEqual(await flushCounts(registry), { 'interval/success': 1 });
    assert.equal(await metricValue(registry, 'aether_journal_sync_count_total', { policy: 'interval' }), 1);
    assert.equal(journal.unsyncedBytes, 0);
    assert.equal(clock.pendingTimers, 0, 'nothing unsynced: no timer');
    assert.equal(fs.datasyncCalls, 1);
    clock.advance(1000);
    await journal.idle();
    assert.deepEqual(await flushCounts(registry), { 'interval/success': 1 }, 'no flush without unsynced bytes');
  });

  it('an append during a flush arms its own deadline at once and stays counted', async () => {
    const { journal, clock, registry, fs } = await openMemoryJournal(interval(5, 0));
    const gate = latch();
    fs.hooks.datasync = () => gate.wait;
    await journal.append(1, Buffer.alloc(10));
    clock.advance(5);
    await settle();
    assert.equal(clock.pendingTimers, 0, 'the flush took over the deadline');
    clock.advance(2);
    await journal.append(1, Buffer.alloc(20));
    assert.equal(clock.pendingTimers, 1, 'the new byte has its deadline even while the flush is held');
    fs.hooks.datasync = undefined;
    gate.open();
    await journal.idle();
    assert.deepEqual(await flushCounts(registry), { 'interval/success': 1 });
    assert.equal(journal.unsyncedBytes, recordBytes(20), 'the flush covered only what was written before it began');
    assert.equal(clock.pendingTimers, 1, 'still the one deadline');
    clock.advance(4);
    await journal.idle();
    assert.deepEqual(await flushCounts(registry), { 'interval/success': 1 });
    clock.advance(1);
    await journal.idle();
    assert.deepEqual(await flushCounts(registry), { 'interval/success': 2 }, 'five ms after that append');
    assert.equal(journal.unsyncedBytes, 0);
    assert.equal(clock.pendingTimers, 0);
  });

  it('a deadline armed during a flush that ends up covering its bytes is cancelled', async () => {
    const { journal, clock, registry } = await openMemoryJournal(interval(5, 0));
    const b = journal.append(1, Buffer.alloc(10));
    const flushed = journal.flush(); // waits for b to be written, then fsyncs what is written by then
    const c = journal.append(1, Buffer.alloc(10)); // during the flush: arms a deadline, then is written with b
    assert.equal(clock.pendingTimers, 1);
    await Promise.all([b, c, flushed]);
    await journal.idle();
    assert.equal(journal.unsyncedBytes, 0);
    assert.equal(clock.pendingTimers, 0, 'nothing unsynced: no timer');
    clock.advance(5);
    await journal.idle();
    assert.deepEqual(await flushCounts(registry), { 'manual/success': 1 }, 'no empty interval flush');
  });

  it('after a backlog flush, bytes left unsynced get the next deadline from its success', async () => {
    const r = recordBytes(100);
    const { journal, clock, registry, fs } = await openMemoryJournal(interval(5, 2 * r));
    const gate = latch();
    fs.hooks.datasync = () => gate.wait;
    await journal.append(1, Buffer.alloc(100));
    await journal.append(1, Buffer.alloc(100)); // backlog: flush, held
    await settle();
    clock.advance(3);
    assert.deepEqual(await flushCounts(registry), {});
    fs.hooks.datasync = undefined;
    gate.open();
    await journal.idle();
    assert.deepEqual(await flushCounts(registry), { 'backlog/success': 1 });
    assert.equal(clock.pendingTimers, 0, 'nothing unsynced, nothing armed');
    await journal.append(1, Buffer.alloc(100));
    assert.equal(clock.pendingTimers, 1);
    clock.advance(5);
    await journal.idle();
    assert.deepEqual(await flushCounts(registry), { 'backlog/success': 1, 'interval/success': 1 });
  });

  it('backlog: threshold - 1 unsynced bytes do not flush', async () => {
    const threshold = 4 * recordBytes(100);
    const { journal, registry, clock } = await openMemoryJournal(interval(5, threshold));
    for (let i = 0; i < 3; i++) await journal.append(1, Buffer.alloc(100));
    await journal.append(1, Buffer.alloc(99));
    await journal.idle();
    assert.equal(journal.unsyncedBytes, threshold - 1);
    assert.deepEqual(await flushCounts(registry), {});
    assert.equal(clock.pendingTimers, 1, 'only the interval deadline waits');
    clock.advance(5);
    await journal.idle();
    assert.deepEqual(await flushCounts(registry), { 'interval/success': 1 });
  });

  it('backlog: exactly the threshold flushes at once with reason backlog, before any deadline', async () => {
    const threshold = 4 * recordBytes(100);
    const { journal, registry, clock } = await openMemoryJournal(interval(5, threshold));
    for (let i = 0; i < 4; i++) await journal.append(1, Buffer.alloc(payloadBytesFor(threshold, 4)));
    await journal.idle();
    assert.deepEqual(await flushCounts(registry), { 'backlog/success': 1 });
    assert.equal(await metricValue(registry, 'aether_journal_sync_count_total', { policy: 'backlog' }), 1);
    assert.equal(journal.unsyncedBytes, 0, 'success resets the counter');
    assert.equal(clock.pendingTimers, 0, 'the deadline armed by the first append was cancelled; nothing is unsynced');
  });

  it('backlog: a scripted sequence gives exactly the expected reasons and counts', async () => {
    const r = recordBytes(100);
    const { journal, registry, clock } = await openMemoryJournal(interval(10, 3 * r));
    const step = async (appends: number, advanceMs: number) => {
      for (let i = 0; i < appends; i++) await journal.append(1, Buffer.alloc(100));
      await journal.idle();
      clock.advance(advanceMs);
      await journal.idle();
    };
    await step(2, 9); // 2r unsynced, deadline not reached
    assert.deepEqual(await flushCounts(registry), {});
    await step(1, 0); // 3r: backlog
    assert.deepEqual(await flushCounts(registry), { 'backlog/success': 1 });
    await step(7, 0); // 3r, 3r -> two backlogs, 1r left
    assert.deepEqual(await flushCounts(registry), { 'backlog/success': 3 });
    assert.equal(journal.unsyncedBytes, r);
    await step(0, 10); // the 1r left goes at its deadline
    assert.deepEqual(await flushCounts(registry), { 'backlog/success': 3, 'interval/success': 1 });
    await step(0, 100); // nothing unsynced, nothing happens
    assert.deepEqual(await flushCounts(registry), { 'backlog/success': 3, 'interval/success': 1 });
  });

  it('backlog 0 disables the trigger; the interval still flushes', async () => {
    const { journal, registry, clock } = await openMemoryJournal(interval(5, 0));
    for (let i = 0; i < 64; i++) await journal.append(1, Buffer.alloc(64 * 1024));
    await journal.idle();
    assert.ok(journal.unsyncedBytes > 4 * 1024 * 1024);
    assert.deepEqual(await flushCounts(registry), {});
    clock.advance(5);
    await journal.idle();
    assert.deepEqual(await flushCounts(registry), { 'interval/success': 1 });
  });

  it('an append resolves once written to the OS, before any fsync', async () => {
    const { journal, fs } = await openMemoryJournal(interval(5, 0));
    const seq = await journal.append(3, Buffer.from('x'));
    assert.equal(seq, 1);
    assert.equal(fs.datasyncCalls, 0);
    assert.equal(fs.writeCalls > 0, true);
  });
});

describe('manual policy', () => {
  it('ignores the backlog threshold and arms no timer; only an explicit flush flushes, reason manual', async () => {
    const { journal, registry, clock, fs } = await openMemoryJournal(manual(1000));
    for (let i = 0; i < 20; i++) await journal.append(1, Buffer.alloc(500));
    await journal.idle();
    assert.ok(journal.unsyncedBytes >= 1000);
    assert.equal(clock.pendingTimers, 0);
    clock.advance(60_000);
    await journal.idle();
    assert.deepEqual(await flushCounts(registry), {});
    assert.equal(fs.datasyncCalls, 0);
    await journal.flush();
    assert.deepEqual(await flushCounts(registry), { 'manual/success': 1 });
    assert.equal(await metricValue(registry, 'aether_journal_sync_count_total', { policy: 'manual' }), 1);
    assert.equal(journal.unsyncedBytes, 0);
    assert.equal(clock.pendingTimers, 0);
  });
});

describe('immediate policy', () => {
  it('an append resolves only after its bytes are fsynced', async () => {
    const { journal, fs } = await openMemoryJournal(immediate());
    const gate = latch();
    fs.hooks.datasync = () => gate.wait;
    let done = false;
    const p = journal.append(1, Buffer.from('hello')).then((seq) => {
      done = true;
      return seq;
    });
    for (let i = 0; i < 5; i++) await settle();
    assert.equal(done, false, 'not acknowledged while the fsync is held');
    assert.equal(fs.datasyncCalls, 1);
    gate.open();
    assert.equal(await p, 1);
    const after = fs.crash();
    const reopened = await openMemoryJournal(immediate(), { fs: after });
    assert.deepEqual((await collect(reopened.journal)).map((e) => e.payload.toString()), ['hello']);
  });

  it('concurrent appends share one fsync (group commit)', async () => {
    const { journal, fs } = await openMemoryJournal(immediate());
    const all = Array.from({ length: 50 }, (_, i) => journal.append(1, Buffer.from(`r${i}`)));
    assert.deepEqual(await Promise.all(all), Array.from({ length: 50 }, (_, i) => i + 1));
    assert.equal(fs.datasyncCalls, 1);
  });

  it('appends that arrive while an fsync runs share the next one', async () => {
    const { journal, fs, registry } = await openMemoryJournal(immediate());
    const gate = latch();
    fs.hooks.datasync = () => gate.wait;
    const first = journal.append(1, Buffer.from('first'));
    await settle();
    assert.equal(fs.datasyncCalls, 1);
    const later: Promise<number>[] = [];
    for (let i = 0; i < 30; i++) {
      later.push(journal.append(1, Buffer.from(`later ${i}`)));
      if (i % 10 === 0) await settle();
    }
    assert.equal(fs.datasyncCalls, 1, 'no second fsync while the first runs');
    fs.hooks.datasync = undefined;
    gate.open();
    await first;
    await Promise.all(later);
    assert.equal(fs.datasyncCalls, 2);
    assert.equal(await metricValue(registry, 'aether_journal_fsync_total', { outcome: 'success' }), 2);
  });

  it('skips background tracking: no backlog flush, no timer, no WAL flush counted', async () => {
    const { journal, registry, clock } = await openMemoryJournal(immediate(1));
    for (let i = 0; i < 10; i++) await journal.append(1, Buffer.alloc(1000));
    assert.equal(clock.pendingTimers, 0);
    assert.equal(journal.unsyncedBytes, 0);
    assert.deepEqual(await flushCounts(registry), {});
  });
});

describe('shutdown', () => {
  for (const sync of [interval(5, 0), manual(0), immediate(0)]) {
    it(`close flushes with reason shutdown under ${sync.policy}, and everything is durable`, async () => {
      const { journal, registry, fs } = await openMemoryJournal(sync);
      const appends = Array.from({ length: 5 }, (_, i) => journal.append(2, Buffer.from(`entry ${i}`)));
      await Promise.all(appends);
      await journal.close();
      const counts = await flushCounts(registry);
      assert.deepEqual(counts, { 'shutdown/success': 1 });
      assert.equal(await metricValue(registry, 'aether_journal_sync_count_total', { policy: 'shutdown' }), 1);
      const reopened = await openMemoryJournal(sync, { fs: fs.crash() });
      assert.equal((await collect(reopened.journal)).length, 5);
      await assert.rejects(journal.append(1, Buffer.alloc(1)), { code: 'JOURNAL_CLOSED' });
    });
  }

  it('close leaves no timer armed', async () => {
    const { journal, clock } = await openMemoryJournal(interval(5, 0));
    await journal.append(1, Buffer.alloc(1));
    assert.equal(clock.pendingTimers, 1);
    await journal.close();
    assert.equal(clock.pendingTimers, 0);
  });
});
