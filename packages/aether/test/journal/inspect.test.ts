import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, statSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { isAetherError } from '../../src/errors.js';
import { ManualClock } from '../../src/runtime/infra/clock.js';
import { inspectJournal } from '../../src/runtime/journal/inspect.js';
import { recordBytes } from '../../src/runtime/journal/record.js';
import { segmentName } from '../../src/runtime/journal/segment.js';
import { manual, openDiskJournal, tempStateDir } from './helpers.js';

function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const n of readdirSync(dir).sort()) out[n] = readFileSync(join(dir, n)).toString('base64');
  return out;
}

describe('inspectJournal', () => {
  it('reports segments, sequence numbers, pending figures and age', async () => {
    const state = tempStateDir();
    const clock = new ManualClock(1_800_000_000_000);
    const journal = await openDiskJournal(state, manual(), { clock, segmentBytes: 4096 });
    for (let i = 0; i < 7; i++) {
      await journal.append(1, Buffer.alloc(1000));
      clock.advance(1000);
    }
    await journal.commit(2);
    await journal.close();
    clock.advance(3000);
    const r = await inspectJournal({ stateDir: state, clock });
    assert.deepEqual(r, {
      journal_dir: join(state, 'journal'),
      segments: [
        { file: segmentName(1), first_seq: 1, last_seq: 3, records: 3, bytes: 24 + 3 * recordBytes(1000) },
        { file: segmentName(4), first_seq: 4, last_seq: 6, records: 3, bytes: 24 + 3 * recordBytes(1000) },
        { file: segmentName(7), first_seq: 7, last_seq: 7, records: 1, bytes: 24 + recordBytes(1000) },
      ],
      first_seq: 1,
      last_seq: 7,
      committed_seq: 2,
      durable_seq: 7,
      pending_entries: 5,
      pending_bytes: 5 * recordBytes(1000),
      oldest_pending_timestamp_ms: 1_800_000_002_000,
      oldest_age_seconds: 8,
      torn_tail: { found: false },
    });
  });

  it('reports a torn tail without cutting it, and leaves every byte as it was', async () => {
    const state = tempStateDir();
    const journal = await openDiskJournal(state, manual(), { segmentBytes: 4096 });
    for (let i = 0; i < 2; i++) await journal.append(1, Buffer.alloc(500));
    await journal.idle(); // a crash: nothing fsynced, nothing closed
    const dir = join(state, 'journal');
    const seg = join(dir, segmentName(1));
    truncateSync(seg, statSync(seg).size - 7);
    const before = snapshot(dir);
    const r = await inspectJournal({ stateDir: state });
    assert.deepEqual(r.torn_tail, { found: true, segment: segmentName(1), offset_bytes: 24 + recordBytes(500), bytes: recordBytes(500) - 7, reason: 'incomplete record', dropped_segments: [] });
    assert.equal(r.last_seq, 1);
    assert.equal(r.pending_entries, 1);
    assert.deepEqual(snapshot(dir), before);
  });

  it('works beside an open journal', async () => {
    const state = tempStateDir();
    const journal = await openDiskJournal(state, manual());
    await journal.append(1, Buffer.from('x'));
    const r = await inspectJournal({ stateDir: state });
    assert.equal(r.last_seq, 1);
    await journal.close();
  });

  it('an empty journal directory has no sequence numbers', async () => {
    const state = tempStateDir();
    mkdirSync(join(state, 'journal'));
    const r = await inspectJournal({ stateDir: state });
    assert.deepEqual(
      { segments: r.segments, first: r.first_seq, last: r.last_seq, pending: r.pending_entries, age: r.oldest_age_seconds },
      { segments: [], first: null, last: null, pending: 0, age: null },
    );
  });

  it('a state directory without a journal is JOURNAL_NOT_FOUND, and nothing is created', async () => {
    const state = tempStateDir();
    await assert.rejects(inspectJournal({ stateDir: state }), (err) => isAetherError(err, 'JOURNAL_NOT_FOUND') && err.message === `no journal directory at ${join(state, 'journal')}`);
    assert.deepEqual(readdirSync(state), []);
  });
});
