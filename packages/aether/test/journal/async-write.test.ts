import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { collect, immediate, interval, latch, manual, openDiskJournal, openMemoryJournal, settle, tempStateDir } from './helpers.js';

/** A FUSE write's worth of data, and more. */
const big = (seq: number): Buffer => Buffer.alloc(129 * 1024, seq % 251);
const small = (seq: number): Buffer => Buffer.from(`small record ${seq}`);

describe('large records', () => {
  it('large and small records interleaved land in order, on disk, and come back byte for byte', async () => {
    const dir = tempStateDir();
    const journal = await openDiskJournal(dir, interval(5, 0), { segmentBytes: 1 << 20 });
    const written: Buffer[] = [];
    const acks: Promise<number>[] = [];
    for (let seq = 1; seq <= 60; seq++) {
      const payload = seq % 3 === 0 ? small(seq) : big(seq);
      written.push(payload);
      acks.push(journal.append(1, payload));
    }
    assert.deepEqual(await Promise.all(acks), written.map((_, i) => i + 1), 'acknowledged in sequence order');
    await journal.flush();
    await journal.close();
    const again = await openDiskJournal(dir, interval(5, 0), { segmentBytes: 1 << 20 });
    const back = await collect(again);
    assert.equal(back.length, written.length);
    back.forEach((e, i) => assert.ok(e.seq === i + 1 && e.payload.equals(written[i] as Buffer), `entry ${i + 1}`));
    await again.close();
  });

  it('under immediate, an append is acknowledged only once its large record is durable', async () => {
    const { journal, fs } = await openMemoryJournal(immediate());
    const payload = big(1);
    await journal.append(1, payload);
    const after = await openMemoryJournal(immediate(), { fs: fs.crash() });
    assert.deepEqual((await collect(after.journal)).map((e) => e.payload), [payload]);
  });
});

describe('an explicit flush and the fdatasync already running', () => {
  it('joins a running fdatasync that covers everything it must make durable, instead of queueing a second', async () => {
    const { journal, fs } = await openMemoryJournal(manual());
    await journal.append(1, Buffer.from('one'));
    const gates = [latch(), latch()];
    let calls = 0;
    fs.hooks.datasync = () => (gates[calls++] as ReturnType<typeof latch>).wait;
    const a = journal.flush(); // fdatasync 1 starts, covering 'one'
    await settle();
    let bDone = false;
    const b = journal.flush().then(() => (bDone = true)); // nothing new: fdatasync 1 covers it
    await journal.append(1, Buffer.from('two'));
    let cDone = false;
    const c = journal.flush().then(() => (cDone = true)); // 'two' needs the next fdatasync
    await settle();
    (gates[0] as ReturnType<typeof latch>).open();
    await a;
    await settle();
    assert.deepEqual([bDone, cDone], [true, false], 'the covered flush is done with fdatasync 1; the other waits for fdatasync 2');
    (gates[1] as ReturnType<typeof latch>).open();
    await Promise.all([b, c]);
    assert.equal(calls, 2);
  });

  it('queues the next fdatasync when something was written after the running one started', async () => {
    const { journal, fs } = await openMemoryJournal(manual());
    await journal.append(1, Buffer.from('one'));
    const gate = latch();
    fs.hooks.datasync = () => gate.wait;
    const first = journal.flush();
    await settle();
    await journal.append(1, Buffer.from('two'));
    const second = journal.flush();
    await settle();
    gate.open();
    await Promise.all([first, second]);
    assert.equal(fs.datasyncCalls, 2);
    const after = await openMemoryJournal(manual(), { fs: fs.crash() });
    assert.deepEqual((await collect(after.journal)).map((e) => e.payload.toString()), ['one', 'two']);
  });
});
