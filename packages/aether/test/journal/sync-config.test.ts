import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigStore } from '../../src/config/store.js';
import { journalOptionsFromConfig, observeJournalConfig, syncSettingsFromSection } from '../../src/runtime/journal/config.js';
import { recordBytes } from '../../src/runtime/journal/record.js';
import { flushCounts, immediate, interval, latch, manual, openMemoryJournal, settle } from './helpers.js';

describe('runtime sync policy switch', () => {
  it('interval -> manual first flushes what is unsynced, then leaves no timer', async () => {
    const { journal, registry, clock } = await openMemoryJournal(interval(5, 0));
    await journal.append(1, Buffer.alloc(100));
    assert.equal(clock.pendingTimers, 1);
    await journal.applySyncConfig(manual());
    assert.deepEqual(await flushCounts(registry), { 'manual/success': 1 });
    assert.equal(journal.unsyncedBytes, 0);
    assert.equal(clock.pendingTimers, 0);
    await journal.append(1, Buffer.alloc(100));
    clock.advance(1000);
    await journal.idle();
    assert.deepEqual(await flushCounts(registry), { 'manual/success': 1 }, 'manual from now on');
    assert.equal(journal.syncSettings.policy, 'manual');
  });

  it('a shorter interval applied live holds the bytes already waiting no longer than the new interval', async () => {
    const { journal, registry, clock } = await openMemoryJournal(interval(5000, 0));
    await journal.append(1, Buffer.alloc(100));
    await journal.applySyncConfig(interval(5, 0));
    clock.advance(5);
    await journal.idle();
    assert.deepEqual(await flushCounts(registry), { 'interval/success': 1 });
    assert.equal(journal.unsyncedBytes, 0);
    // A longer one keeps the deadline already armed.
    await journal.append(1, Buffer.alloc(100));
    await journal.applySyncConfig(interval(5000, 0));
    clock.advance(5);
    await journal.idle();
    assert.deepEqual(await flushCounts(registry), { 'interval/success': 2 });
  });

  it('manual -> interval flushes first, then the deadline runs for later appends', async () => {
    const { journal, registry, clock } = await openMemoryJournal(manual());
    await journal.append(1, Buffer.alloc(100));
    await journal.applySyncConfig(interval(7, 0));
    assert.deepEqual(await flushCounts(registry), { 'manual/success': 1 });
    await journal.append(1, Buffer.alloc(100));
    assert.equal(clock.pendingTimers, 1);
    clock.advance(7);
    await journal.idle();
    assert.deepEqual(await flushCounts(registry), { 'manual/success': 1, 'interval/success': 1 });
  });

  it('interval -> immediate: appends made before the switch are durable when the switch returns', async () => {
    const { journal, fs } = await openMemoryJournal(interval(5, 0));
    await journal.append(1, Buffer.from('before'));
    await journal.applySyncConfig(immediate());
    assert.equal(journal.durableSeq, 1);
    const gate = latch();
    fs.hooks.datasync = () => gate.wait;
    let acked = false;
    const p = journal.append(1, Buffer.from('after')).then(() => (acked = true));
    await settle();
    assert.equal(acked, false, 'immediate semantics after the switch');
    gate.open();
    await p;
    assert.equal(journal.durableSeq, 2);
  });

  it('a switch with nothing unsynced flushes nothing', async () => {
    const { journal, registry } = await openMemoryJournal(interval(5, 0));
    await journal.applySyncConfig(manual());
    await journal.applySyncConfig(immediate());
    assert.deepEqual(await flushCounts(registry), {});
  });

  it('lowering the backlog threshold below the unsynced bytes flushes at once (reason backlog)', async () => {
    const { journal, registry } = await openMemoryJournal(interval(1000, 0));
    for (let i = 0; i < 4; i++) await journal.append(1, Buffer.alloc(100));
    await journal.applySyncConfig(interval(1000, 2 * recordBytes(100)));
    await journal.idle();
    assert.deepEqual(await flushCounts(registry), { 'backlog/success': 1 });
  });

  it('a new interval applies from the next deadline', async () => {
    const { journal, registry, clock } = await openMemoryJournal(interval(10, 0));
    await journal.append(1, Buffer.alloc(1));
    await journal.applySyncConfig(interval(50, 0));
    clock.advance(10);
    await journal.idle();
    assert.deepEqual(await flushCounts(registry), { 'interval/success': 1 }, 'the armed deadline keeps its time');
    await journal.append(1, Buffer.alloc(1));
    clock.advance(49);
    await journal.idle();
    assert.deepEqual(await flushCounts(registry), { 'interval/success': 1 });
    clock.advance(1);
    await journal.idle();
    assert.deepEqual(await flushCounts(registry), { 'interval/success': 2 });
  });

  it('invalid settings are refused and the running ones kept', async () => {
    const { journal } = await openMemoryJournal(interval(5, 0));
    await assert.rejects(journal.applySyncConfig({ policy: 'interval', intervalMs: 0, backlogBytes: 0 }), RangeError);
    await assert.rejects(journal.applySyncConfig({ policy: 'sometimes' as 'manual', intervalMs: 5, backlogBytes: 0 }), RangeError);
    assert.deepEqual(journal.syncSettings, interval(5, 0));
  });
});

describe('config observer', () => {
  it('a reload that changes the journal section switches the running journal (flushing first)', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'aether-journal-config-'));
    const file = join(cwd, 'aether.toml');
    writeFileSync(file, 'journal_sync_policy = "interval"\njournal_sync_interval_ms = 20\njournal_sync_backlog_bytes = 0\n');
    const store = new ConfigStore({ cwd, env: {} });
    const opts = journalOptionsFromConfig(store.current);
    assert.deepEqual(opts.sync, { policy: 'interval', intervalMs: 20, backlogBytes: 0 });
    assert.equal(opts.segmentBytes, 67108864);
    assert.equal(opts.dir, join(store.current.state_dir, 'journal'));
    const { journal, registry } = await openMemoryJournal(opts.sync);
    const errors: unknown[] = [];
    const stop = observeJournalConfig(store, journal, (err) => errors.push(err));
    await journal.append(1, Buffer.alloc(10));
    writeFileSync(file, 'journal_sync_policy = "manual"\njournal_sync_interval_ms = 20\njournal_sync_backlog_bytes = 4096\n');
    const r = store.reload();
    assert.ok(r.ok && r.changed.includes('journal'));
    await journal.idle();
    assert.deepEqual(journal.syncSettings, { policy: 'manual', intervalMs: 20, backlogBytes: 4096 });
    assert.deepEqual(await flushCounts(registry), { 'manual/success': 1 });
    stop();
    writeFileSync(file, 'journal_sync_policy = "immediate"\n');
    store.reload();
    assert.equal(journal.syncSettings.policy, 'manual', 'unsubscribed');
    assert.deepEqual(errors, []);
  });

  it('reads the section values by their TOML keys', () => {
    assert.deepEqual(syncSettingsFromSection({ journal_sync_policy: 'immediate', journal_sync_interval_ms: 9, journal_sync_backlog_bytes: 0, journal_segment_bytes: 4096 }), {
      policy: 'immediate',
      intervalMs: 9,
      backlogBytes: 0,
    });
  });
});
