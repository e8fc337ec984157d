import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { reasons, setup } from './helpers.js';

describe('low-water 0', () => {
  it('cache dirty bytes (seed 002): clears as soon as dirty bytes drop below the high-water re-trigger', () => {
    const s = setup({ cache_dirty_low_water_bytes: 0 });
    s.cache.set({ dirtyBytes: 1000 });
    assert.deepEqual(reasons(s).cache, ['dirty_bytes']);
    s.cache.set({ dirtyBytes: 1000 });
    assert.deepEqual(reasons(s).cache, ['dirty_bytes'], 'still at the re-trigger condition');
    s.cache.set({ dirtyBytes: 999 });
    assert.deepEqual(reasons(s).cache, []);
    s.cache.set({ dirtyBytes: 999 });
    assert.deepEqual(reasons(s).cache, []);
  });

  it('journal bytes and entries: the check passes only once nothing is pending (documented in the reference pages)', () => {
    const s = setup({ journal_low_water_bytes: 0, journal_low_water_entries: 0 });
    s.journal.set({ pendingBytes: 100, pendingEntries: 10, oldestPendingTimestampMs: s.clock.now() });
    assert.deepEqual(reasons(s).journal, ['bytes', 'entries']);
    s.journal.set({ pendingBytes: 1, pendingEntries: 1 });
    assert.deepEqual(reasons(s).journal, ['bytes', 'entries']);
    s.journal.set({ pendingBytes: 0, pendingEntries: 0, oldestPendingTimestampMs: null });
    assert.deepEqual(reasons(s).journal, []);
  });

  it('journal clear age 0: the age check passes only for an entry appended this very millisecond or nothing pending', () => {
    const s = setup({ journal_clear_age_seconds: 0 });
    s.journal.set({ pendingBytes: 1, pendingEntries: 1, oldestPendingTimestampMs: s.clock.now() - 30_000 });
    assert.deepEqual(reasons(s).journal, ['age']);
    s.journal.set({ oldestPendingTimestampMs: s.clock.now() - 1 });
    assert.deepEqual(reasons(s).journal, ['age']);
    s.journal.set({ pendingBytes: 0, pendingEntries: 0, oldestPendingTimestampMs: null });
    assert.deepEqual(reasons(s).journal, []);
  });
});
