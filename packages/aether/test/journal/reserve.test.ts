// A full disk is met before a change is made: the journal reserves the blocks its records go into
// ahead (hasRoom), with a spare segment file made ahead for the next roll.
import assert from 'node:assert/strict';
import { closeSync, fstatSync, openSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { reserveFileSpace } from '../../src/mount/fuse-binding.js';
import { RECORD_HEADER_BYTES } from '../../src/runtime/journal/record.js';
import { parseSegmentName } from '../../src/runtime/journal/segment.js';
import { isSpareSegmentName } from '../../src/runtime/journal/writer.js';
import { collect, fixedPayload, interval, openDiskJournal, payloadFor, tempStateDir } from './helpers.js';

const ENOSPC = -28;
const EOPNOTSUPP = -95;
const EINVAL = -22;
const SEGMENT = 64 * 1024;

/** A reservation that works until `full` is set; every call is kept as [fd, offset, length]. */
function fakeDisk() {
  const disk = { full: false, calls: [] as [number, number, number][] };
  const reserve = (fd: number, offset: number, length: number): number => {
    disk.calls.push([fd, offset, length]);
    if (length <= 0) return EINVAL; // as fallocate(2): the journal would take it for "cannot reserve"
    return disk.full ? ENOSPC : 0;
  };
  return { disk, reserve };
}

/** The spare segment files in the journal directory. */
const spares = (dir: string): string[] => readdirSync(join(dir, 'journal')).filter(isSpareSegmentName);

const until = async (what: string, ok: () => boolean): Promise<void> => {
  for (let i = 0; i < 200 && !ok(); i++) await new Promise((r) => setTimeout(r, 5));
  assert.ok(ok(), what);
};

describe('journal: disk space reserved ahead of the records', () => {
  it('fallocate with KEEP_SIZE (the patched addon): blocks reserved, the size unchanged', () => {
    const path = join(tempStateDir(), 'f');
    writeFileSync(path, 'abc');
    const fd = openSync(path, 'r+');
    try {
      assert.equal(reserveFileSpace(fd, 3, 1 << 20), 0);
      const st = fstatSync(fd);
      assert.equal(st.size, 3);
      assert.ok(st.blocks * 512 >= 1 << 20, `${st.blocks} blocks`);
      assert.equal(reserveFileSpace(-1, 0, 4096), -9, 'EBADF as -errno');
    } finally {
      closeSync(fd);
    }
  });

  it('once the disk is full, hasRoom says no before the reserved blocks run out, and yes again once there is room; every record reads back', async () => {
    const dir = tempStateDir();
    const { disk, reserve } = fakeDisk();
    const journal = await openDiskJournal(dir, interval(), { segmentBytes: SEGMENT, reserve });
    await until('the spare is made', () => spares(dir).length === 1);
    let seq = 0;
    const append = async (): Promise<void> => {
      seq++;
      await journal.append(1, payloadFor(seq, 2000));
    };
    for (let i = 0; i < 40; i++) await append(); // over one segment: a roll into the spare
    assert.ok(journal.hasRoom(2000));
    disk.full = true;
    let taken = 0;
    while (journal.hasRoom(2000)) {
      await append();
      taken += RECORD_HEADER_BYTES + 2000;
      assert.ok(taken < 4 * SEGMENT, 'refused within the reserved window');
    }
    assert.equal(journal.hasRoom(2000), false, 'asked again: still no');
    // What the reservations cover is more than what was taken: nothing went past them.
    assert.ok(disk.calls.length > 0);
    disk.full = false;
    await until('room again', () => journal.hasRoom(2000));
    for (let i = 0; i < 60; i++) await append(); // rolls again, past the full spell
    assert.deepEqual(
      (await collect(journal)).map((e) => [e.seq, e.payload.equals(payloadFor(e.seq, 2000))]),
      Array.from({ length: seq }, (_, i) => [i + 1, true]),
    );
    await journal.close();
    assert.deepEqual(spares(dir), [], 'the spare goes at close');
  });

  it('a roll while full takes the spare when its blocks hold the record, else says no', async () => {
    const dir = tempStateDir();
    const { disk, reserve } = fakeDisk();
    const journal = await openDiskJournal(dir, interval(), { segmentBytes: SEGMENT, reserve });
    await until('the spare is made', () => spares(dir).length === 1);
    // Fill the active segment to its end, with the reservation covering it.
    let seq = 0;
    while (seq < 31) await journal.append(1, payloadFor(++seq, 2000));
    disk.full = true;
    const payload = SEGMENT - 2000; // needs a new segment
    assert.equal(journal.hasRoom(payload), true, 'the spare was reserved for a window');
    await journal.append(1, Buffer.alloc(payload, 1));
    // The next spare cannot be reserved: once that is known, a record that needs it is refused.
    await until('more than any reservation holds is refused', () => !journal.hasRoom(SEGMENT * 8));
    assert.equal(journal.hasRoom(100), true, 'a small record still fits the active segment');
    await journal.close();
    const names = readdirSync(join(dir, 'journal')).filter((n) => parseSegmentName(n) !== null);
    assert.ok(names.length >= 2, `rolled: ${names.join(' ')}`);
  });

  it('rolls in quick succession never open a spare that is being renamed in (a review: ENOENT, or records written into the previous segment)', async () => {
    const dir = tempStateDir();
    const journal = await openDiskJournal(dir, interval(), { segmentBytes: 4096, reserve: reserveFileSpace });
    const appends: Promise<number>[] = [];
    for (let seq = 1; seq <= 40; seq++) {
      assert.ok(journal.hasRoom(3000));
      appends.push(journal.append(1, fixedPayload(seq, 3000)));
      await Promise.resolve();
      await Promise.resolve();
    }
    await Promise.all(appends);
    assert.equal(journal.failed, null);
    await journal.close();
    const again = await openDiskJournal(dir, interval(), { segmentBytes: 4096 });
    assert.deepEqual((await collect(again)).map((e) => [e.seq, e.payload.equals(fixedPayload(e.seq, 3000))]), Array.from({ length: 40 }, (_, i) => [i + 1, true]));
    await again.close();
    assert.deepEqual(spares(dir), []);
  });

  it('while a segment is being made from the spare on a disk that filled, hasRoom says no past what is reserved and yes within it', async () => {
    const dir = tempStateDir();
    const { disk, reserve } = fakeDisk();
    const journal = await openDiskJournal(dir, interval(), { segmentBytes: SEGMENT, reserve });
    let seq = 0;
    while (seq < 31) await journal.append(1, payloadFor(++seq, 2000));
    disk.full = true;
    const rolled = journal.append(1, Buffer.alloc(30_000, 1)); // starts the next segment, made from the spare
    assert.equal(journal.hasRoom(SEGMENT * 4), false, 'past what is reserved');
    assert.equal(journal.hasRoom(1000), true, 'within it');
    await rolled;
    assert.equal(journal.failed, null);
    await journal.close();
  });

  // Segments larger than the reservation window: a segment being made takes more records than its
  // spare had reserved, and hasRoom reserves more through the spare's descriptor.
  it('several 1 MiB records in one turn on a disk with room, with 4 MiB segments: all taken (real fallocate)', async () => {
    const dir = tempStateDir();
    const journal = await openDiskJournal(dir, interval(), { segmentBytes: 4 << 20, reserve: reserveFileSpace });
    const MiB = Buffer.alloc(1 << 20, 7);
    const appends: Promise<number>[] = [];
    for (let round = 0; round < 3; round++) {
      const said: boolean[] = [];
      for (let i = 0; i < 4; i++) {
        said.push(journal.hasRoom(MiB.length));
        appends.push(journal.append(1, MiB));
      }
      assert.deepEqual(said, [true, true, true, true], `round ${round}`);
      await Promise.all(appends);
    }
    await journal.close();
  });

  it('a file system that cannot reserve (EOPNOTSUPP): nothing is reserved again and hasRoom is always yes', async () => {
    const dir = tempStateDir();
    const calls: number[] = [];
    const journal = await openDiskJournal(dir, interval(), {
      segmentBytes: SEGMENT,
      reserve: () => {
        calls.push(1);
        return EOPNOTSUPP;
      },
    });
    for (let seq = 1; seq <= 80; seq++) await journal.append(1, payloadFor(seq, 2000));
    assert.equal(journal.hasRoom(1 << 20), true);
    assert.equal(calls.length, 1, 'asked once');
    await journal.close();
  });

  it('a spare left by a crash is removed at open', async () => {
    const dir = tempStateDir();
    const first = await openDiskJournal(dir, interval(), { segmentBytes: SEGMENT });
    await first.append(1, Buffer.from('x'));
    await first.close();
    writeFileSync(join(dir, 'journal', 'next-segment.7.spare'), 'left behind');
    writeFileSync(join(dir, 'journal', 'next-segment.spare'), 'left behind by an older build');
    const journal = await openDiskJournal(dir, interval(), { segmentBytes: SEGMENT });
    assert.deepEqual(spares(dir), []);
    assert.equal((await collect(journal)).length, 1);
    await journal.close();
  });
});
