import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RECORD_PAYLOAD_BYTES_MAX } from '../../src/runtime/journal/record.js';
import { collect, fixedPayload, JOURNAL_DIR, manual, openMemoryJournal, payloadFor } from './helpers.js';
import { MemoryFs } from './memory-fs.js';

describe('appending and reading entries', () => {
  it('reads back every entry in order across many segment rolls', async () => {
    const { journal, fs } = await openMemoryJournal(manual(), { segmentBytes: 4096 });
    for (let seq = 1; seq <= 200; seq++) assert.equal(await journal.append(seq % 5, payloadFor(seq, 2000)), seq);
    assert.ok((await fs.readdir(JOURNAL_DIR)).filter((n) => n.endsWith('.wal')).length > 50);
    const entries = await collect(journal);
    assert.equal(entries.length, 200);
    for (const e of entries) {
      assert.equal(e.type, e.seq % 5);
      assert.ok(e.payload.equals(payloadFor(e.seq, 2000)), `entry ${e.seq}`);
    }
  });

  it('every new segment is created with its header and its name made durable (directory fsync) before records go in', async () => {
    const { journal, fs } = await openMemoryJournal(manual(), { segmentBytes: 4096 });
    const before = fs.syncDirCalls;
    for (let seq = 1; seq <= 9; seq++) await journal.append(1, Buffer.alloc(1000));
    assert.equal(fs.syncDirCalls - before, 3, 'one directory fsync per segment');
    const names = (await fs.readdir(JOURNAL_DIR)).filter((n) => n.endsWith('.wal'));
    assert.deepEqual(names, ['00000000000000000001.wal', '00000000000000000004.wal', '00000000000000000007.wal']);
    const crashed = fs.crash();
    assert.deepEqual((await crashed.readdir(JOURNAL_DIR)).filter((n) => n.endsWith('.wal')), names, 'the names survive a power loss');
  });

  it('a record larger than the segment size goes whole into a segment of its own', async () => {
    const { journal, fs } = await openMemoryJournal(manual(), { segmentBytes: 4096 });
    await journal.append(1, Buffer.alloc(100));
    await journal.append(1, fixedPayload(2, 20_000));
    await journal.append(1, Buffer.alloc(100));
    assert.deepEqual(
      (await fs.readdir(JOURNAL_DIR)).filter((n) => n.endsWith('.wal')),
      ['00000000000000000001.wal', '00000000000000000002.wal', '00000000000000000003.wal'],
    );
    assert.ok((await collect(journal))[1]?.payload.equals(fixedPayload(2, 20_000)));
  });

  it('refuses a payload above the limit without taking a sequence number', async () => {
    const { journal } = await openMemoryJournal(manual());
    await assert.rejects(journal.append(1, Buffer.alloc(RECORD_PAYLOAD_BYTES_MAX + 1)), { code: 'JOURNAL_RECORD_TOO_LARGE', errno: 'EFBIG' });
    assert.equal(await journal.append(1, Buffer.alloc(1)), 1);
  });

  it('concurrent appends get consecutive numbers in call order', async () => {
    const { journal } = await openMemoryJournal(manual());
    const seqs = await Promise.all(Array.from({ length: 100 }, (_, i) => journal.append(1, Buffer.from(String(i)))));
    assert.deepEqual(seqs, Array.from({ length: 100 }, (_, i) => i + 1));
    assert.deepEqual((await collect(journal)).map((e) => e.payload.toString()), Array.from({ length: 100 }, (_, i) => String(i)));
  });

  it('an iteration keeps going over entries appended while it runs, and skips what gets committed meanwhile', async () => {
    const { journal } = await openMemoryJournal(manual(), { segmentBytes: 4096 });
    for (let seq = 1; seq <= 10; seq++) await journal.append(1, fixedPayload(seq, 1000));
    const seen: number[] = [];
    for await (const e of journal.entries()) {
      seen.push(e.seq);
      if (e.seq === 2) await journal.commit(6);
      if (e.seq === 9) await journal.append(1, fixedPayload(11, 1000));
    }
    assert.deepEqual(seen, [1, 2, 7, 8, 9, 10, 11]);
  });

  it('the payload handed to append may be reused by the caller at once', async () => {
    const { journal } = await openMemoryJournal(manual());
    const buf = Buffer.from('first');
    const p = journal.append(1, buf);
    buf.write('XXXXX');
    await p;
    assert.equal((await collect(journal))[0]?.payload.toString(), 'first');
  });

  it('an owned payload is written as it is, without a copy; a plain one is copied', async () => {
    const fs = new MemoryFs();
    const written: Buffer[] = [];
    const open = fs.open.bind(fs);
    fs.open = async (path, mode) => {
      const f = await open(path, mode);
      const writevSync = f.writevSync.bind(f);
      f.writevSync = (buffers, position) => {
        written.push(...buffers);
        writevSync(buffers, position);
      };
      return f;
    };
    const { journal } = await openMemoryJournal(manual(), { fs });
    const owned = Buffer.from('owned payload');
    const plain = Buffer.from('plain payload');
    await journal.append(1, owned, { owned: true });
    await journal.append(1, plain);
    assert.ok(written.includes(owned), 'the owned buffer itself went to the file');
    assert.ok(!written.includes(plain), 'the plain one was copied');
    assert.deepEqual((await collect(journal)).map((e) => e.payload.toString()), ['owned payload', 'plain payload']);
  });
});
