import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, ConfigStore, type SectionChange } from '../../src/config/index.js';
import { tempDir } from './helpers.js';

function storeWith(toml: string, env: Record<string, string> = {}) {
  const cwd = tempDir();
  const file = join(cwd, 'aether.toml');
  writeFileSync(file, toml);
  const store = new ConfigStore({ cwd, env });
  return { store, env, write: (t: string) => writeFileSync(file, t) };
}

describe('ConfigStore', () => {
  it('refuses to start on an invalid configuration', () => {
    assert.throws(() => storeWith('journal_sync_interval_ms = 0\n'), ConfigError);
  });

  it('reload notifies observers of only the sections that changed, with old and new values', () => {
    const { store, write } = storeWith('journal_sync_backlog_bytes = 100\n[backpressure]\njournal_max_age_seconds = 40\n');
    const seen: SectionChange[] = [];
    store.observe('journal', (c) => seen.push(c));
    store.observe('backpressure', (c) => seen.push(c));
    store.observe('cache', (c) => seen.push(c));
    write('journal_sync_backlog_bytes = 200\n[backpressure]\njournal_max_age_seconds = 40\n');
    const r = store.reload();
    assert.deepEqual(r.ok && r.changed, ['journal']);
    assert.equal(seen.length, 1);
    assert.equal(seen[0]?.section, 'journal');
    assert.equal(seen[0]?.old.journal_sync_backlog_bytes, 100);
    assert.equal(seen[0]?.new.journal_sync_backlog_bytes, 200);
    assert.equal(seen[0]?.new.journal_sync_policy, 'interval');
    assert.equal(store.current.journal_sync_backlog_bytes, 200);
  });

  it('reload with nothing changed notifies nobody', () => {
    const { store } = storeWith('journal_sync_backlog_bytes = 100\n');
    let calls = 0;
    store.observe('journal', () => calls++);
    const r = store.reload();
    assert.deepEqual(r.ok && r.changed, []);
    assert.equal(calls, 0);
  });

  it('environment changes are picked up on reload (every layer is re-resolved)', () => {
    const { store, env } = storeWith('');
    const seen: SectionChange[] = [];
    store.observe('bridge.reconnect_backoff', (c) => seen.push(c));
    env.AFS_AETHER_RECONNECT_JITTER_PERCENT = '5';
    assert.ok(store.reload().ok);
    assert.equal(seen[0]?.old.jitter_percent, 20);
    assert.equal(seen[0]?.new.jitter_percent, 5);
  });

  it('a failed reload keeps the running configuration untouched and says why', () => {
    const { store, write } = storeWith('journal_sync_backlog_bytes = 100\n');
    const before = store.current;
    let calls = 0;
    store.observe('journal', () => calls++);
    write('journal_sync_backlog_bytes = "2MiB"\n[backpressure]\njournal_max_age_seconds = 1\n');
    const r = store.reload();
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.problems.length, 2);
    assert.match(!r.ok ? (r.problems[0] ?? '') : '', /journal_sync_backlog_bytes="2MiB"/);
    assert.equal(store.current, before);
    assert.equal(calls, 0);
  });

  it('settings that cannot change live keep their running value and are reported as restart-required', () => {
    const { store, write } = storeWith('state_dir = "/a"\njournal_sync_interval_ms = 5\n');
    write('state_dir = "/b"\njournal_sync_interval_ms = 6\n');
    const r = store.reload();
    assert.ok(r.ok);
    assert.deepEqual(r.restartRequired, ['AFS_AETHER_STATE_DIR']);
    assert.deepEqual(r.changed, ['journal']);
    assert.equal(store.current.state_dir, '/a');
    assert.equal(store.current.journal_sync_interval_ms, 6);
  });

  it('a throwing observer does not stop the others or the reload', () => {
    const { store, write } = storeWith('[cache]\nmax_bytes = 1\n');
    let second = 0;
    store.observe('cache', () => {
      throw new Error('boom');
    });
    store.observe('cache', () => second++);
    write('[cache]\nmax_bytes = 2\n');
    const r = store.reload();
    assert.ok(r.ok);
    assert.deepEqual(r.observerErrors, ['observer of [cache] failed: boom']);
    assert.equal(second, 1);
    assert.equal(store.current.cache.max_bytes, 2);
  });

  it('unsubscribe stops notifications', () => {
    const { store, write } = storeWith('[cache]\nmax_bytes = 1\n');
    let calls = 0;
    const off = store.observe('cache', () => calls++);
    off();
    write('[cache]\nmax_bytes = 2\n');
    store.reload();
    assert.equal(calls, 0);
  });
});
