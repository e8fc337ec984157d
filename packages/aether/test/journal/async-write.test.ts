import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ASYNC_WRITE_BYTES } from '../../src/runtime/journal/writer.js';
import { collect, interval, immediate, openDiskJournal, openMemoryJournal, tempStateDir } from './helpers.js';

const big = (seq: number): Buffer => Buffer.alloc(ASYNC_WRITE_BYTES + 1000, seq % 251);
const small = (seq: number): Buffer => Buffer.from(`small record ${seq}`);

describe('large batches written on the thread pool', () => {
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
