import assert from 'node:assert/strict';
import { appendFileSync, readdirSync, readFileSync, statSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { isAetherError } from '../../src/errors.js';
import { recordBytes } from '../../src/runtime/journal/record.js';
import { encodeSegmentHeader, SEGMENT_HEADER_BYTES, segmentName } from '../../src/runtime/journal/segment.js';
import { collect, fixedPayload, flip, manual, openDiskJournal, tempStateDir, typeFor } from './helpers.js';

const PAYLOAD_BYTES = 1000;

/**
 * A journal with `n` records of PAYLOAD_BYTES (three per 4 KiB segment). `shape`: `clean` is
 * closed (so everything was fsynced and the checkpoint says so); `crashed` is abandoned with
 * nothing fsynced, as a crash leaves it; a number `k` is abandoned after a flush covering 1..k.
 */
async function journalWith(n: number, opts: { commitSeq?: number; shape?: 'clean' | 'crashed' | number } = {}): Promise<{ state: string; dir: string }> {
  const state = tempStateDir();
  const journal = await openDiskJournal(state, manual(), { segmentBytes: 4096 });
  const shape = opts.shape ?? 'clean';
  for (let seq = 1; seq <= n; seq++) {
    await journal.append(typeFor(seq), fixedPayload(seq, PAYLOAD_BYTES));
    if (seq === shape) await journal.flush();
  }
  if (opts.commitSeq) await journal.commit(opts.commitSeq);
  if (shape === 'clean') await journal.close();
  else await journal.idle();
  return { state, dir: join(state, 'journal') };
}

const reopen = (state: string) => openDiskJournal(state, manual(), { segmentBytes: 4096 });
/** Offset of the k-th record (0-based) inside its segment. */
const recordOffset = (k: number) => SEGMENT_HEADER_BYTES + k * recordBytes(PAYLOAD_BYTES);

function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const n of readdirSync(dir).sort()) out[n] = readFileSync(join(dir, n)).toString('base64');
  return out;
}

async function seqsOf(state: string): Promise<number[]> {
  const j = await reopen(state);
  const seqs = (await collect(j)).map((e) => e.seq);
  await j.close();
  return seqs;
}

describe('recovery from a damaged journal', () => {
  it('a truncated last record after a crash is cut and reported; every earlier record is intact', async () => {
    const { state, dir } = await journalWith(5, { shape: 'crashed' });
    const last = join(dir, segmentName(4)); // records 4 and 5
    truncateSync(last, statSync(last).size - 5);
    const j = await reopen(state);
    assert.deepEqual(j.recovery.tornTail, {
      segment: segmentName(4),
      offsetBytes: recordOffset(1),
      cutBytes: recordBytes(PAYLOAD_BYTES) - 5,
      reason: 'incomplete record',
      droppedSegments: [],
    });
    assert.equal(statSync(last).size, recordOffset(1), 'cut at the last valid record');
    const entries = await collect(j);
    assert.deepEqual(
      entries.map((e) => e.seq),
      [1, 2, 3, 4],
    );
    for (const e of entries) assert.deepEqual(e.payload, fixedPayload(e.seq, PAYLOAD_BYTES));
    assert.equal(await j.append(1, Buffer.from('new')), 5);
    await j.close();
    assert.deepEqual(await seqsOf(state), [1, 2, 3, 4, 5]);
  });

  it('the same cut after a clean shutdown hits a record that had been fsynced: refused as corruption', async () => {
    const { state, dir } = await journalWith(5);
    const last = join(dir, segmentName(4));
    truncateSync(last, statSync(last).size - 5);
    const before = snapshot(dir);
    await assert.rejects(reopen(state), (err) => isAetherError(err, 'JOURNAL_CORRUPT') && /entry 5 had been made durable \(up to 5\)/.test(err.message));
    assert.deepEqual(snapshot(dir), before, 'a refused open changes nothing');
  });

  it('a flipped byte in the last record after a crash is a torn tail: cut and reported', async () => {
    const { state, dir } = await journalWith(5, { shape: 'crashed' });
    const last = join(dir, segmentName(4));
    const b = readFileSync(last);
    flip(b, recordOffset(1) + 100, 0x01);
    writeFileSync(last, b);
    const j = await reopen(state);
    assert.equal(j.recovery.tornTail?.reason, 'checksum mismatch');
    assert.equal(j.recovery.tornTail?.offsetBytes, recordOffset(1));
    assert.deepEqual((await collect(j)).map((e) => e.seq), [1, 2, 3, 4]);
    await j.close();
  });

  it('a flipped byte in a flushed record, with valid records after it, is corruption: refused, nothing cut', async () => {
    const { state, dir } = await journalWith(6, { shape: 5 }); // last segment 4..6; 6 claims 5 durable
    const last = join(dir, segmentName(4));
    const b = readFileSync(last);
    flip(b, recordOffset(1) + 10, 0x80); // record 5
    writeFileSync(last, b);
    const before = snapshot(dir);
    await assert.rejects(reopen(state), (err) => {
      assert.ok(isAetherError(err, 'JOURNAL_CORRUPT'), String(err));
      assert.match(err.message, /checksum mismatch at byte 1056 of 00000000000000000004\.wal: entry 5 had been made durable \(up to 5\) and cannot be read/);
      return true;
    });
    assert.deepEqual(snapshot(dir), before, 'a refused open changes nothing');
  });

  it('a flipped byte in records never fsynced is what a power loss leaves: the log ends there, later segments go', async () => {
    const { state, dir } = await journalWith(9, { shape: 2 });
    const b = readFileSync(join(dir, segmentName(4)));
    flip(b, recordOffset(1) + 10, 0x80); // record 5; 6..9 are valid but none claims 5 durable
    writeFileSync(join(dir, segmentName(4)), b);
    const j = await reopen(state);
    assert.deepEqual(j.recovery.tornTail, {
      segment: segmentName(4),
      offsetBytes: recordOffset(1),
      cutBytes: 2 * recordBytes(PAYLOAD_BYTES),
      reason: 'checksum mismatch',
      droppedSegments: [segmentName(7)],
    });
    assert.deepEqual((await collect(j)).map((e) => e.seq), [1, 2, 3, 4]);
    assert.ok(!readdirSync(dir).includes(segmentName(7)));
    await j.close();
  });

  it('a flipped byte in an older segment is corruption', async () => {
    const { state, dir } = await journalWith(9);
    const middle = join(dir, segmentName(4));
    const b = readFileSync(middle);
    flip(b, recordOffset(2) + 3, 0xff); // record 6, the last of its segment
    writeFileSync(middle, b);
    await assert.rejects(reopen(state), (err) => isAetherError(err, 'JOURNAL_CORRUPT') && /entry 6 had been made durable/.test(err.message));
  });

  it('damage in a segment whose entries are all committed loses nothing and is released', async () => {
    const { state, dir } = await journalWith(7, { commitSeq: 3 });
    // The close left segment 1 (all committed) released already; damage one in the committed range by hand.
    writeFileSync(join(dir, segmentName(1)), Buffer.alloc(100, 7));
    const j = await reopen(state);
    assert.deepEqual((await collect(j)).map((e) => e.seq), [4, 5, 6, 7]);
    assert.ok(!readdirSync(dir).includes(segmentName(1)));
    await j.close();
  });

  for (const shape of ['crashed', 'clean'] as const) {
    it(`a zero-filled tail is cut; every record is intact (${shape})`, async () => {
      const { state, dir } = await journalWith(5, { shape });
      const last = join(dir, segmentName(4));
      const size = statSync(last).size;
      appendFileSync(last, Buffer.alloc(8192));
      const j = await reopen(state);
      assert.deepEqual(j.recovery.tornTail, { segment: segmentName(4), offsetBytes: size, cutBytes: 8192, reason: 'checksum mismatch', droppedSegments: [] });
      assert.deepEqual((await collect(j)).map((e) => e.seq), [1, 2, 3, 4, 5]);
      await j.close();
    });
  }

  it('a missing segment in the middle is a clear error with a stable code, not silent loss', async () => {
    const { state, dir } = await journalWith(9);
    unlinkSync(join(dir, segmentName(4)));
    const before = snapshot(dir);
    await assert.rejects(reopen(state), (err) => {
      assert.ok(isAetherError(err, 'JOURNAL_SEGMENT_MISSING'), String(err));
      assert.deepEqual({ from: err.context.fromSeq, to: err.context.toSeq }, { from: 4, to: 6 });
      assert.match(err.message, /uncommitted entries 4\.\.6 are missing/);
      return true;
    });
    assert.deepEqual(snapshot(dir), before);
  });

  it('a removed checkpoint is named as a cause: without it, entries committed and released count as missing (a review blamed a segment alone)', async () => {
    const { state, dir } = await journalWith(9, { commitSeq: 3 });
    await (await reopen(state)).close();
    assert.ok(!readdirSync(dir).includes(segmentName(1)), 'the committed segment was released');
    unlinkSync(join(dir, 'checkpoint'));
    await assert.rejects(reopen(state), (err) => isAetherError(err, 'JOURNAL_SEGMENT_MISSING') && /uncommitted entries 1\.\.3 are missing \(.*; the checkpoint file .*\/checkpoint is missing, which said how far entries were committed, or a segment file was removed\)/.test(err.message));
  });

  it('a missing oldest segment above the checkpoint is an error, even with nothing fsynced', async () => {
    const { state, dir } = await journalWith(6, { shape: 'crashed' });
    unlinkSync(join(dir, segmentName(1)));
    await assert.rejects(reopen(state), (err) => isAetherError(err, 'JOURNAL_SEGMENT_MISSING') && err.context.fromSeq === 1 && err.context.toSeq === 3);
  });

  it('a missing segment whose entries were all committed is no loss', async () => {
    const { state, dir } = await journalWith(9, { commitSeq: 6 });
    assert.ok(!readdirSync(dir).includes(segmentName(4)), 'released on commit already');
    assert.deepEqual(await seqsOf(state), [7, 8, 9]);
  });

  it('an older segment cut short by a power loss (never fsynced): the log ends where it does', async () => {
    const { state, dir } = await journalWith(8, { shape: 'crashed' });
    truncateSync(join(dir, segmentName(4)), recordOffset(1)); // only record 4 reached the disk
    const seg7Bytes = statSync(join(dir, segmentName(7))).size;
    const j = await reopen(state);
    assert.deepEqual(j.recovery.tornTail, {
      segment: segmentName(7),
      offsetBytes: 0,
      cutBytes: seg7Bytes,
      reason: 'entries 5..6 are not in any segment',
      droppedSegments: [],
    });
    assert.deepEqual(j.recovery.removedSegments, [segmentName(7)]);
    assert.deepEqual((await collect(j)).map((e) => e.seq), [1, 2, 3, 4]);
    await j.close();
  });

  it('a last segment with a torn header is removed and reported; one with only a header is removed quietly', async () => {
    const torn = await journalWith(3);
    writeFileSync(join(torn.dir, segmentName(4)), Buffer.from('AETHJR'));
    const j = await reopen(torn.state);
    assert.deepEqual(j.recovery.tornTail, { segment: segmentName(4), offsetBytes: 0, cutBytes: 6, reason: 'segment header incomplete', droppedSegments: [] });
    assert.deepEqual(j.recovery.removedSegments, [segmentName(4)]);
    assert.equal(await j.append(1, Buffer.alloc(1)), 4, 'the name is free again');
    await j.close();

    const empty = await journalWith(3);
    writeFileSync(join(empty.dir, segmentName(4)), encodeSegmentHeader(4));
    const k = await reopen(empty.state);
    assert.equal(k.recovery.tornTail, null);
    assert.deepEqual(k.recovery.removedSegments, [segmentName(4)]);
    assert.deepEqual((await collect(k)).map((e) => e.seq), [1, 2, 3]);
    await k.close();
  });

  it('a damaged checkpoint is corruption', async () => {
    const { state, dir } = await journalWith(3, { commitSeq: 1 });
    const cp = join(dir, 'checkpoint');
    const b = readFileSync(cp);
    flip(b, 13, 1);
    writeFileSync(cp, b);
    await assert.rejects(reopen(state), { code: 'JOURNAL_CORRUPT' });
  });

  it('a leftover checkpoint.tmp from an interrupted commit is ignored and removed', async () => {
    const { state, dir } = await journalWith(3, { commitSeq: 1 });
    writeFileSync(join(dir, 'checkpoint.tmp'), Buffer.alloc(3));
    const j = await reopen(state);
    assert.equal(j.committedSeq, 1);
    assert.ok(!readdirSync(dir).includes('checkpoint.tmp'));
    await j.close();
  });
});
