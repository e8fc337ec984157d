import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ManualClock } from '../../src/runtime/infra/clock.js';
import { recordBytes } from '../../src/runtime/journal/record.js';
import { collect, interval, JOURNAL_DIR, latch, manual, metricValue, openDiskJournal, openMemoryJournal, tempStateDir } from './helpers.js';

const segmentFiles = (names: string[]) => names.filter((n) => n.endsWith('.wal'));

describe('commit watermark and pending figures', () => {
  it('pending bytes, entries and oldest age are exact after every append and commit', async () => {
    const { journal, clock, registry } = await openMemoryJournal(manual());
    const t0 = clock.now();
    assert.deepEqual(journal.pending(), { pendingBytes: 0, pendingEntries: 0, oldestPendingTimestampMs: null });
    const sizes = [10, 200, 3000, 0, 45];
    for (const [i, n] of sizes.entries()) {
      await journal.append(1, Buffer.alloc(n));
      clock.advance(1000);
      const appended = sizes.slice(0, i + 1);
      assert.deepEqual(journal.pending(), {
        pendingBytes: appended.reduce((s, b) => s + recordBytes(b), 0),
        pendingEntries: i + 1,
        oldestPendingTimestampMs: t0,
      });
    }
    assert.equal(await metricValue(registry, 'aether_journal_oldest_entry_age_seconds'), 5);
    await journal.commit(2);
    assert.deepEqual(journal.pending(), {
      pendingBytes: recordBytes(3000) + recordBytes(0) + recordBytes(45),
      pendingEntries: 3,
      oldestPendingTimestampMs: t0 + 2000,
    });
    assert.equal(await metricValue(registry, 'aether_journal_pending_entries'), 3);
    assert.equal(await metricValue(registry, 'aether_journal_pending_bytes'), recordBytes(3000) + recordBytes(0) + recordBytes(45));
    assert.equal(await metricValue(registry, 'aether_journal_oldest_entry_age_seconds'), 3);
    await journal.commit(5);
    assert.deepEqual(journal.pending(), { pendingBytes: 0, pendingEntries: 0, oldestPendingTimestampMs: null });
    assert.equal(await metricValue(registry, 'aether_journal_oldest_entry_age_seconds'), 0);
  });

  it('tells listeners about every change, and stops when unsubscribed', async () => {
    const { journal } = await openMemoryJournal(manual());
    const seen: number[] = [];
    const off = journal.onPendingChange(() => seen.push(journal.pending().pendingEntries));
    await journal.append(1, Buffer.alloc(1));
    await journal.append(1, Buffer.alloc(1));
    await journal.commit(1);
    await journal.commit(1); // no change, no call
    off();
    await journal.append(1, Buffer.alloc(1));
    assert.deepEqual(seen, [1, 2, 1]);
  });

  it('entries() hands back only what is not committed, in order', async () => {
    const { journal } = await openMemoryJournal(manual());
    for (let i = 1; i <= 10; i++) await journal.append(i, Buffer.from(`e${i}`));
    await journal.commit(4);
    assert.deepEqual((await collect(journal)).map((e) => e.seq), [5, 6, 7, 8, 9, 10]);
    assert.deepEqual((await collect(journal, 8)).map((e) => `${e.type}:${e.payload.toString()}`), ['8:e8', '9:e9', '10:e10']);
  });

  it('commit past the last appended entry is a programming error', async () => {
    const { journal } = await openMemoryJournal(manual());
    await journal.append(1, Buffer.alloc(1));
    assert.throws(() => journal.commit(2));
    assert.throws(() => journal.commit(-1));
  });

  it('fully committed segments are released; the one still taking records stays', async () => {
    const state = tempStateDir();
    const dir = join(state, 'journal');
    const journal = await openDiskJournal(state, manual(), { segmentBytes: 4096 });
    for (let i = 0; i < 20; i++) await journal.append(1, Buffer.alloc(1000));
    await journal.flush();
    const before = segmentFiles(readdirSync(dir));
    assert.equal(before.length, 7, 'three 1 KiB records per 4 KiB segment');
    await journal.commit(7); // segments 1-3 and 4-6 fully committed, 7-9 not
    assert.deepEqual(segmentFiles(readdirSync(dir)), before.slice(2));
    await journal.commit(20);
    assert.deepEqual(segmentFiles(readdirSync(dir)), before.slice(6), 'the active segment is kept');
    assert.deepEqual(journal.pending(), { pendingBytes: 0, pendingEntries: 0, oldestPendingTimestampMs: null });
    await journal.close();
  });

  it('a retired segment with unsynced bytes is released after the flush that closes it', async () => {
    const { journal, fs } = await openMemoryJournal(manual(), { segmentBytes: 4096 });
    for (let i = 0; i < 6; i++) await journal.append(1, Buffer.alloc(1000));
    await journal.commit(3);
    assert.ok((await fs.readdir(JOURNAL_DIR)).includes('00000000000000000001.wal'), 'still open for its fsync');
    await journal.flush();
    await journal.idle();
    assert.ok(!(await fs.readdir(JOURNAL_DIR)).includes('00000000000000000001.wal'));
  });

  it('pending figures and the watermark survive a restart (real files)', async () => {
    const state = tempStateDir();
    const clock = new ManualClock(1_800_000_000_000);
    const journal = await openDiskJournal(state, interval(5, 0), { clock, segmentBytes: 4096 });
    for (let i = 0; i < 12; i++) {
      await journal.append(2, Buffer.alloc(700, i));
      clock.advance(250);
    }
    await journal.commit(5);
    const pending = journal.pending();
    await journal.close();
    clock.advance(10_000);
    const again = await openDiskJournal(state, interval(5, 0), { clock, segmentBytes: 4096 });
    assert.deepEqual(again.pending(), pending);
    assert.equal(again.pending().oldestPendingTimestampMs, 1_800_000_000_000 + 5 * 250);
    assert.equal(again.committedSeq, 5);
    assert.equal(again.recovery.committedSeq, 5);
    assert.equal(again.recovery.firstPendingSeq, 6);
    assert.deepEqual((await collect(again)).map((e) => e.seq), [6, 7, 8, 9, 10, 11, 12]);
    assert.equal(await again.append(1, Buffer.alloc(1)), 13);
    await again.close();
  });

  it('a commit is durable once it resolves, even if the machine loses power right after', async () => {
    const { journal, fs } = await openMemoryJournal(manual());
    for (let i = 0; i < 5; i++) await journal.append(1, Buffer.alloc(10));
    await journal.flush();
    await journal.commit(3);
    const after = await openMemoryJournal(manual(), { fs: fs.crash() });
    assert.equal(after.journal.committedSeq, 3);
    assert.deepEqual((await collect(after.journal)).map((e) => e.seq), [4, 5]);
  });

  it('a commit that had not reached the disk only means entries are handed back again', async () => {
    const { journal, fs } = await openMemoryJournal(manual());
    for (let i = 0; i < 5; i++) await journal.append(1, Buffer.alloc(10));
    await journal.flush();
    const gate = latch();
    const hold = (): Promise<void> => gate.wait;
    fs.hooks.datasync = hold;
    void journal.commit(3);
    assert.equal(journal.pending().pendingEntries, 2, 'figures drop at once');
    const after = await openMemoryJournal(manual(), { fs: fs.crash() });
    assert.equal(after.journal.committedSeq, 0);
    assert.deepEqual((await collect(after.journal)).map((e) => e.seq), [1, 2, 3, 4, 5]);
    gate.open();
  });

  it('a checkpoint ahead of the tail (committed, then power lost before the fsync) numbers new entries after it', async () => {
    const { journal, fs } = await openMemoryJournal(interval(1000, 0));
    await journal.append(1, Buffer.from('one'));
    await journal.flush();
    for (let i = 0; i < 4; i++) await journal.append(1, Buffer.from('not yet durable'));
    await journal.commit(5); // the hub acknowledged entries the disk does not have yet
    const after = await openMemoryJournal(interval(1000, 0), { fs: fs.crash() });
    assert.equal(after.journal.recovery.committedBeyondTail, true);
    assert.equal(after.journal.recovery.lastSeq, 1);
    assert.deepEqual(after.journal.pending(), { pendingBytes: 0, pendingEntries: 0, oldestPendingTimestampMs: null });
    assert.equal(await after.journal.append(1, Buffer.from('six')), 6, 'the hub never sees a sequence number twice');
    await after.journal.close();
    const third = await openMemoryJournal(interval(1000, 0), { fs: after.fs.crash() });
    assert.deepEqual((await collect(third.journal)).map((e) => [e.seq, e.payload.toString()]), [[6, 'six']]);
  });
});
