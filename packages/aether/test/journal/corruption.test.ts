import assert from 'node:assert/strict';
import { appendFileSync, readdirSync, readFileSync, statSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { isAetherError } from '../../src/errors.js';
import { recordBytes } from '../../src/runtime/journal/record.js';
import { SEGMENT_HEADER_BYTES, segmentName } from '../../src/runtime/journal/segment.js';
import { collect, fixedPayload, flip, manual, openDiskJournal, tempStateDir, typeFor } from './helpers.js';

const PAYLOAD_BYTES = 1000;

/** A journal with `n` records of PAYLOAD_BYTES (three per 4 KiB segment), closed. */
async function journalWith(n: number, commitSeq = 0): Promise<{ state: string; dir: string }> {
  const state = tempStateDir();
  const journal = await openDiskJournal(state, manual(), { segmentBytes: 4096 });
  for (let seq = 1; seq <= n; seq++) await journal.append(typeFor(seq), fixedPayload(seq, PAYLOAD_BYTES));
  if (commitSeq > 0) await journal.commit(commitSeq);
  await journal.close();
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
  it('a truncated last record is cut and reported; every earlier record is intact', async () => {
    const { state, dir } = await journalWith(5);
    const last = join(dir, segmentName(4)); // records 4 and 5
    truncateSync(last, statSync(last).size - 5);
    const j = await reopen(state);
    assert.deepEqual(j.recovery.tornTail, {
      segment: segmentName(4),
      offsetBytes: recordOffset(1),
      cutBytes: recordBytes(PAYLOAD_BYTES) - 5,
      reason: 'incomplete record',
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

  it('a flipped byte in the last record is a torn tail: cut and reported', async () => {
    const { state, dir } = await journalWith(5);
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

  it('a flipped byte in a record followed by valid ones is corruption: refused, nothing cut', async () => {
    const { state, dir } = await journalWith(6); // last segment 4..6
    const last = join(dir, segmentName(4));
    const b = readFileSync(last);
    flip(b, recordOffset(1) + 10, 0x80); // record 5
    writeFileSync(last, b);
    const before = snapshot(dir);
    await assert.rejects(reopen(state), (err) => {
      assert.ok(isAetherError(err, 'JOURNAL_CORRUPT'), String(err));
      assert.match(err.message, /damaged at byte 1052 \(checksum mismatch\) and valid records follow/);
      return true;
    });
    assert.deepEqual(snapshot(dir), before, 'a refused open changes nothing');
  });

  it('a flipped byte in an older segment is corruption', async () => {
    const { state, dir } = await journalWith(9);
    const middle = join(dir, segmentName(4));
    const b = readFileSync(middle);
    flip(b, recordOffset(2) + 3, 0xff); // record 6, the last of its segment
    writeFileSync(middle, b);
    await assert.rejects(reopen(state), (err) => isAetherError(err, 'JOURNAL_CORRUPT') && /uncommitted entries 6\.\.6 cannot be read/.test(err.message));
  });

  it('damage in a segment whose entries are all committed loses nothing and is released', async () => {
    const { state, dir } = await journalWith(7, 3);
    // The close left segment 1 (all committed) released already; damage one in the committed range by hand.
    writeFileSync(join(dir, segmentName(1)), Buffer.alloc(100, 7));
    const j = await reopen(state);
    assert.deepEqual((await collect(j)).map((e) => e.seq), [4, 5, 6, 7]);
    assert.ok(!readdirSync(dir).includes(segmentName(1)));
    await j.close();
  });

  it('a zero-filled tail is cut; every record is intact', async () => {
    const { state, dir } = await journalWith(5);
    const last = join(dir, segmentName(4));
    const size = statSync(last).size;
    appendFileSync(last, Buffer.alloc(8192));
    const j = await reopen(state);
    assert.deepEqual(j.recovery.tornTail, { segment: segmentName(4), offsetBytes: size, cutBytes: 8192, reason: 'checksum mismatch' });
    assert.deepEqual((await collect(j)).map((e) => e.seq), [1, 2, 3, 4, 5]);
    await j.close();
  });

  it('a missing segment in the middle is a clear error with a stable code, not silent loss', async () => {
    const { state, dir } = await journalWith(9);
    unlinkSync(join(dir, segmentName(4)));
    await assert.rejects(reopen(state), (err) => {
      assert.ok(isAetherError(err, 'JOURNAL_SEGMENT_MISSING'), String(err));
      assert.deepEqual({ from: err.context.fromSeq, to: err.context.toSeq }, { from: 4, to: 6 });
      assert.match(err.message, /uncommitted entries 4\.\.6 are missing/);
      return true;
    });
  });

  it('a missing oldest segment above the checkpoint is an error too', async () => {
    const { state, dir } = await journalWith(6);
    unlinkSync(join(dir, segmentName(1)));
    await assert.rejects(reopen(state), (err) => isAetherError(err, 'JOURNAL_SEGMENT_MISSING') && err.context.fromSeq === 1 && err.context.toSeq === 3);
  });

  it('a missing segment whose entries were all committed is no loss', async () => {
    const { state, dir } = await journalWith(9, 6);
    assert.ok(!readdirSync(dir).includes(segmentName(4)), 'released on commit already');
    assert.deepEqual(await seqsOf(state), [7, 8, 9]);
  });

  it('a last segment with a torn header is removed and reported; one with only a header is removed quietly', async () => {
    const torn = await journalWith(3);
    writeFileSync(join(torn.dir, segmentName(4)), Buffer.from('AETHJR'));
    const j = await reopen(torn.state);
    assert.deepEqual(j.recovery.tornTail, { segment: segmentName(4), offsetBytes: 0, cutBytes: 6, reason: 'segment header incomplete' });
    assert.deepEqual(j.recovery.removedSegments, [segmentName(4)]);
    assert.equal(await j.append(1, Buffer.alloc(1)), 4, 'the name is free again');
    await j.close();

    const empty = await journalWith(3);
    const header = readFileSync(join(empty.dir, segmentName(1))).subarray(0, SEGMENT_HEADER_BYTES);
    header.writeUInt32LE(4, 12); // first sequence 4
    header.writeUInt32LE(0, 20);
    const { crc32 } = await import('node:zlib');
    header.writeUInt32LE(crc32(header.subarray(0, 20)), 20);
    writeFileSync(join(empty.dir, segmentName(4)), header);
    const k = await reopen(empty.state);
    assert.equal(k.recovery.tornTail, null);
    assert.deepEqual(k.recovery.removedSegments, [segmentName(4)]);
    assert.deepEqual((await collect(k)).map((e) => e.seq), [1, 2, 3]);
    await k.close();
  });

  it('a damaged checkpoint is corruption', async () => {
    const { state, dir } = await journalWith(3, 1);
    const cp = join(dir, 'checkpoint');
    const b = readFileSync(cp);
    flip(b, 13, 1);
    writeFileSync(cp, b);
    await assert.rejects(reopen(state), { code: 'JOURNAL_CORRUPT' });
  });

  it('a leftover checkpoint.tmp from an interrupted commit is ignored and removed', async () => {
    const { state, dir } = await journalWith(3, 1);
    writeFileSync(join(dir, 'checkpoint.tmp'), Buffer.alloc(3));
    const j = await reopen(state);
    assert.equal(j.committedSeq, 1);
    assert.ok(!readdirSync(dir).includes('checkpoint.tmp'));
    await j.close();
  });
});
