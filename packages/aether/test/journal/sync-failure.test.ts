import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isAetherError } from '../../src/errors.js';
import { join } from 'node:path';
import { recordBytes } from '../../src/runtime/journal/record.js';
import { SEGMENT_HEADER_BYTES, segmentName } from '../../src/runtime/journal/segment.js';
import { collect, flushCounts, immediate, interval, ioError, JOURNAL_DIR, manual, metricValue, openMemoryJournal, settle } from './helpers.js';

const retry = { delayMs: 10, delayMsMax: 40 };

/** Makes the next `n` fdatasyncs fail with EIO. */
function failNextDatasyncs(fs: { hooks: { datasync?: (path: string) => void } }, n: number): void {
  let left = n;
  fs.hooks.datasync = () => {
    if (left > 0) {
      left--;
      throw ioError();
    }
  };
}

describe('failed flushes', () => {
  it('interval: an error is counted, the counter kept, and the flush retried until it succeeds', async () => {
    const { journal, fs, clock, registry } = await openMemoryJournal(interval(5, 0), { retry });
    failNextDatasyncs(fs, 1);
    await journal.append(1, Buffer.alloc(100));
    clock.advance(5);
    await journal.idle();
    assert.deepEqual(await flushCounts(registry), { 'interval/error': 1 });
    assert.equal(await metricValue(registry, 'aether_journal_sync_count_total', { policy: 'interval' }), 0, 'sync count is for successes only');
    assert.equal(await metricValue(registry, 'aether_journal_fsync_total', { outcome: 'error' }), 1);
    assert.equal(journal.unsyncedBytes, recordBytes(100), 'the unsynced counter is kept');
    assert.equal(journal.durableSeq, 0, 'nothing is reported durable');
    assert.equal(clock.pendingTimers, 1, 'a retry is scheduled');
    clock.advance(9);
    await journal.idle();
    assert.deepEqual(await flushCounts(registry), { 'interval/error': 1 });
    clock.advance(1);
    await journal.idle();
    assert.deepEqual(await flushCounts(registry), { 'interval/error': 1, 'interval/success': 1 });
    assert.equal(journal.unsyncedBytes, 0);
    assert.equal(journal.durableSeq, 1);
    assert.equal(clock.pendingTimers, 0);
  });

  it('retries back off (doubling up to the maximum) and appends past the backlog do not hammer the disk meanwhile', async () => {
    const r = recordBytes(100);
    const { journal, fs, clock, registry } = await openMemoryJournal(interval(5, r), { retry });
    failNextDatasyncs(fs, 4);
    await journal.append(1, Buffer.alloc(100)); // backlog reached: flush, fails
    await journal.idle();
    assert.deepEqual(await flushCounts(registry), { 'backlog/error': 1 });
    for (let i = 0; i < 5; i++) await journal.append(1, Buffer.alloc(100));
    await journal.idle();
    assert.deepEqual(await flushCounts(registry), { 'backlog/error': 1 }, 'no flush per append while a retry waits');
    for (const [delayMs, errors] of [
      [10, 2],
      [20, 3],
      [40, 4],
    ] as const) {
      clock.advance(delayMs - 1);
      await journal.idle();
      assert.equal((await flushCounts(registry))['backlog/error'], errors - 1, `nothing before ${delayMs} ms`);
      clock.advance(1);
      await journal.idle();
      assert.equal((await flushCounts(registry))['backlog/error'], errors);
    }
    clock.advance(40); // capped at delayMsMax
    await journal.idle();
    assert.deepEqual(await flushCounts(registry), { 'backlog/error': 4, 'backlog/success': 1 });
    assert.equal(journal.unsyncedBytes, 0);
  });

  it('manual: the explicit flush rejects with JOURNAL_FSYNC_FAILED and is retried with reason manual', async () => {
    const { journal, fs, clock, registry } = await openMemoryJournal(manual(), { retry });
    await journal.append(1, Buffer.alloc(10));
    failNextDatasyncs(fs, 1);
    await assert.rejects(journal.flush(), (err) => isAetherError(err, 'JOURNAL_FSYNC_FAILED') && err.errno === 'EIO');
    assert.deepEqual(await flushCounts(registry), { 'manual/error': 1 });
    assert.equal(journal.unsyncedBytes, recordBytes(10));
    clock.advance(10);
    await journal.idle();
    assert.deepEqual(await flushCounts(registry), { 'manual/error': 1, 'manual/success': 1 });
    assert.equal(journal.unsyncedBytes, 0);
  });

  it('immediate: the appends covered by a failed fsync are rejected with EIO; nothing is acknowledged that is not durable', async () => {
    const { journal, fs, registry } = await openMemoryJournal(immediate());
    failNextDatasyncs(fs, 1);
    const failed = await Promise.allSettled([journal.append(1, Buffer.from('a')), journal.append(1, Buffer.from('b'))]);
    for (const f of failed) {
      assert.equal(f.status, 'rejected');
      assert.ok(f.status === 'rejected' && isAetherError(f.reason, 'JOURNAL_FSYNC_FAILED') && f.reason.errno === 'EIO');
    }
    assert.equal(await metricValue(registry, 'aether_journal_fsync_total', { outcome: 'error' }), 1);
    assert.deepEqual(await flushCounts(registry), {}, 'group fsyncs are not WAL flushes of the controller');
    assert.equal(journal.durableSeq, 0);
    // The next append retries: its fsync covers the earlier bytes too.
    assert.equal(await journal.append(1, Buffer.from('c')), 3);
    assert.equal(journal.durableSeq, 3);
    const after = await openMemoryJournal(immediate(), { fs: fs.crash() });
    assert.deepEqual((await collect(after.journal)).map((e) => e.payload.toString()), ['a', 'b', 'c']);
  });

  it('immediate: a failed group fsync is retried after a backoff even when nothing else is appended', async () => {
    const { journal, fs, clock, registry } = await openMemoryJournal(immediate(), { retry });
    failNextDatasyncs(fs, 2);
    await assert.rejects(journal.append(1, Buffer.from('a')), { code: 'JOURNAL_FSYNC_FAILED' });
    assert.equal(journal.durableSeq, 0);
    clock.advance(retry.delayMs);
    await journal.idle();
    assert.equal(journal.durableSeq, 0, 'the first retry failed too');
    clock.advance(retry.delayMs);
    await journal.idle();
    assert.equal(journal.durableSeq, 0, 'the next one waits twice as long');
    clock.advance(retry.delayMs);
    await journal.idle();
    assert.equal(journal.durableSeq, 1, 'the bytes are durable without another append');
    assert.equal(await metricValue(registry, 'aether_journal_fsync_total', { outcome: 'error' }), 2);
    assert.equal(await metricValue(registry, 'aether_journal_fsync_total', { outcome: 'success' }), 1);
    assert.equal(clock.pendingTimers, 0, 'no more retries');
    await journal.close();
  });

  it('close reports a failed shutdown flush, counted as shutdown/error, and still closes', async () => {
    const { journal, fs, registry, clock } = await openMemoryJournal(interval(5, 0), { retry });
    await journal.append(1, Buffer.alloc(10));
    failNextDatasyncs(fs, 1);
    await assert.rejects(journal.close(), { code: 'JOURNAL_FSYNC_FAILED' });
    assert.deepEqual(await flushCounts(registry), { 'shutdown/error': 1 });
    assert.equal(clock.pendingTimers, 0, 'no retry after close');
  });
});

describe('failed writes', () => {
  for (const [what, size] of [['a small record (written synchronously)', 4], ['a 100 KiB record (about a FUSE write)', 100 * 1024]] as const) {
    it(`a failed write of ${what} rejects its append and every later one, and the journal keeps what was written`, async () => {
      const { journal, fs } = await openMemoryJournal(interval(5, 0));
      const kept = Buffer.alloc(size, 'k');
      await journal.append(1, kept);
      fs.hooks.write = () => {
        throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
      };
      await assert.rejects(journal.append(1, Buffer.alloc(size, 'l')), (err) => isAetherError(err, 'JOURNAL_WRITE_FAILED') && err.errno === 'ENOSPC');
      fs.hooks.write = undefined;
      await assert.rejects(journal.append(1, Buffer.from('later')), { code: 'JOURNAL_WRITE_FAILED' });
      assert.equal(journal.lastSeq, 1);
      assert.equal(journal.pending().pendingEntries, 1, 'the failed record is not pending');
      await journal.close();
      const after = await openMemoryJournal(interval(5, 0), { fs: fs.crash() });
      assert.deepEqual((await collect(after.journal)).map((e) => e.payload), [kept]);
      assert.equal(await after.journal.append(1, Buffer.from('next')), 2);
    });
  }

  it('after a failed write every explicit flush fails: appends answered before it may be lost', async () => {
    const { journal, fs } = await openMemoryJournal(interval(5, 0));
    fs.hooks.write = () => {
      throw Object.assign(new Error('EIO: i/o error'), { code: 'EIO' });
    };
    // What the mount does under `interval`: the write is answered once its record is placed.
    const lost = journal.append(1, Buffer.alloc(100 * 1024, 'x'));
    lost.catch(() => undefined);
    await assert.rejects(lost, { code: 'JOURNAL_WRITE_FAILED' });
    fs.hooks.write = undefined;
    for (let i = 0; i < 2; i++) await assert.rejects(journal.flush(), (err) => isAetherError(err, 'JOURNAL_WRITE_FAILED') && err.errno === 'EIO', `flush ${i + 1}`);
    await journal.close();
  });

  it('an append waiting for its fsync when a segment cannot be created is rejected', async () => {
    const { journal, fs } = await openMemoryJournal(immediate(), { segmentBytes: 4096 });
    await journal.append(1, Buffer.alloc(3000));
    fs.hooks.write = (path) => {
      if (path.endsWith('00000000000000000002.wal')) throw Object.assign(new Error('EIO'), { code: 'EIO' });
    };
    await assert.rejects(journal.append(1, Buffer.alloc(3000)), { code: 'JOURNAL_WRITE_FAILED' });
    await settle();
    assert.equal(journal.lastSeq, 1);
  });

  it('a retry after a failed fdatasync writes the bytes again: the failed one dropped their pages from the writeback (as Linux does), and they survive a power loss', async () => {
    const { journal, fs } = await openMemoryJournal(manual(), { retry });
    await journal.append(1, Buffer.from('a'));
    await journal.append(1, Buffer.from('b'));
    failNextDatasyncs(fs, 1);
    await assert.rejects(journal.flush(), { code: 'JOURNAL_FSYNC_FAILED' });
    await journal.append(1, Buffer.from('c'));
    await journal.flush();
    assert.equal(journal.durableSeq, 3);
    const after = await openMemoryJournal(manual(), { fs: fs.crash() });
    assert.deepEqual((await collect(after.journal)).map((e) => e.payload.toString()), ['a', 'b', 'c']);
  });

  it('when the bytes a failed fdatasync dropped no longer read back whole, the journal stops for good and reports nothing durable', async () => {
    const { journal, fs } = await openMemoryJournal(immediate(), { retry });
    await journal.append(1, Buffer.from('a'));
    failNextDatasyncs(fs, 1);
    await assert.rejects(journal.append(1, Buffer.from('b')), { code: 'JOURNAL_FSYNC_FAILED' });
    // The page holding 'b' left memory; read back from the disk, it holds zeros.
    const segment = join(JOURNAL_DIR, segmentName(1));
    fs.damage(segment, SEGMENT_HEADER_BYTES + recordBytes(1), Buffer.alloc(recordBytes(1)));
    await assert.rejects(journal.append(1, Buffer.from('c')), { code: 'JOURNAL_FSYNC_FAILED' });
    await assert.rejects(journal.flush(), (err) => isAetherError(err, 'JOURNAL_FSYNC_FAILED') && /no longer read back whole/.test(err.message));
    assert.equal(journal.failed?.code, 'JOURNAL_FSYNC_FAILED');
    assert.equal(journal.durableSeq, 1, 'only what was durable before');
  });
});

