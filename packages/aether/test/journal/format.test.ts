import assert from 'node:assert/strict';
import { cpSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ManualClock } from '../../src/runtime/infra/clock.js';
import { inspectJournal } from '../../src/runtime/journal/inspect.js';
import { recordBytes } from '../../src/runtime/journal/record.js';
import { buildFormatV1, FORMAT_V1_START_MS, formatV1Payload } from './fixtures/format-v1.js';
import { collect, manual, openDiskJournal, tempStateDir } from './helpers.js';

/** The committed fixture lives in the source tree, beside this file's source. */
const FIXTURE = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'test', 'journal', 'fixtures', 'format-v1');

function fixtureFiles(): Map<string, Buffer> {
  const dir = join(FIXTURE, 'journal');
  return new Map(readdirSync(dir).sort().map((n) => [n, readFileSync(join(dir, n))]));
}

describe('on-disk format v1 (committed fixture)', () => {
  it('today\'s journal opens the v1 fixture and reads every entry back exactly', async () => {
    const state = tempStateDir();
    cpSync(FIXTURE, state, { recursive: true });
    const journal = await openDiskJournal(state, manual(), { segmentBytes: 4096, clock: new ManualClock(FORMAT_V1_START_MS + 60_000) });
    assert.equal(journal.recovery.tornTail, null);
    assert.equal(journal.committedSeq, 2);
    assert.equal(journal.lastSeq, 10);
    const entries = await collect(journal);
    assert.deepEqual(
      entries.map((e) => [e.seq, e.type, e.timestampMs]),
      [3, 4, 5, 6, 7, 8, 9, 10].map((seq) => [seq, seq % 3, FORMAT_V1_START_MS + (seq - 1) * 1000]),
    );
    for (const e of entries) assert.ok(e.payload.equals(formatV1Payload(e.seq)), `payload of ${e.seq}`);
    assert.equal(await journal.append(1, Buffer.from('after')), 11);
    await journal.close();
  });

  it('inspect reads the fixture as v1 wrote it', async () => {
    const r = await inspectJournal({ stateDir: FIXTURE, clock: new ManualClock(FORMAT_V1_START_MS + 60_000) });
    assert.deepEqual(
      r.segments.map((s) => [s.file, s.first_seq, s.last_seq, s.records, s.bytes]),
      [
        ['00000000000000000001.wal', 1, 8, 8, 3780],
        ['00000000000000000009.wal', 9, 10, 2, 1708],
      ],
    );
    // Pending: every record but 1 ("entry 1 " x 10) and 2 ("entry 2 " x 20), without segment headers.
    assert.deepEqual([r.committed_seq, r.durable_seq, r.pending_entries, r.pending_bytes, r.oldest_age_seconds], [2, 10, 8, 3780 - 24 + (1708 - 24) - recordBytes(80) - recordBytes(160), 58]);
    assert.deepEqual(r.torn_tail, { found: false });
  });

  it('today\'s journal writes exactly the bytes of the v1 fixture (a format change needs a new fixture beside this one)', async () => {
    const built = await buildFormatV1();
    const committed = fixtureFiles();
    assert.deepEqual([...built.keys()].sort(), [...committed.keys()]);
    for (const [name, bytes] of committed) assert.ok(bytes.equals(built.get(name) as Buffer), `${name} differs from the v1 fixture`);
  });
});
