import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, existsSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { bin, metric as mountMetric, startMount, stopAll, tempDir, withKernelCaches } from './harness.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const json = <T>(r: { code: number | null; out: string; err: string }): T => {
  assert.equal(r.code, 0, r.err);
  return JSON.parse(r.out) as T;
};

async function metric(address: string, line: RegExp): Promise<number> {
  const text = await (await fetch(`http://${address}/metrics`)).text();
  const m = text.split('\n').find((l) => line.test(l));
  return m ? Number(m.split(' ').pop()) : 0;
}

describe('operating a mount: control commands, reload, status', () => {
  after(stopAll);

  it('status --json reports mount point, state dir, metrics address and sync state; the socket is 0600', async () => {
    const m = await startMount();
    const s = json<Record<string, unknown>>(m.ctl(['status', '--json']));
    assert.equal(s.mountpoint, m.mnt);
    assert.equal(s.state_dir, m.stateDir);
    assert.match(String(s.metrics_address), /^127\.0\.0\.1:\d+$/);
    assert.notEqual(s.metrics_address, '127.0.0.1:0');
    assert.deepEqual((s.sync as { state: string }).state, 'running');
    assert.equal(statSync(join(m.stateDir, 'control.sock')).mode & 0o777, 0o600);
    assert.equal(json<{ sync: string }>(m.ctl(['sync', 'pause', '--json'])).sync, 'paused');
    assert.equal((json<{ sync: { state: string } }>(m.ctl(['status', '--json'])).sync).state, 'paused');
    assert.equal(json<{ sync: string }>(m.ctl(['sync', 'resume', '--json'])).sync, 'running');
    const plain = m.ctl(['status']);
    assert.match(plain.out, /^mountpoint: /m);
    await m.stop();
  });

  it('journal flush is a manual flush; journal inspect and cache inspect/clear answer JSON', async () => {
    const m = await startMount({ env: { AFS_AETHER_JOURNAL_SYNC_POLICY: 'manual' } });
    const address = json<{ metrics_address: string }>(m.ctl(['status', '--json'])).metrics_address;
    writeFileSync(join(m.mnt, 'f'), 'data');
    const before = await metric(address, /^aether_journal_wal_flush_total\{reason="manual",outcome="success"\}/);
    assert.equal(json<{ flushed: boolean }>(m.ctl(['journal', 'flush', '--json'])).flushed, true);
    assert.equal(await metric(address, /^aether_journal_wal_flush_total\{reason="manual",outcome="success"\}/), before + 1);
    const inspect = json<{ segments: unknown[]; last_seq: number; torn_tail: { found: boolean } }>(m.ctl(['journal', 'inspect', '--json']));
    assert.ok(inspect.last_seq >= 2 && inspect.segments.length >= 1);
    assert.equal(inspect.torn_tail.found, false);
    const cache = json<{ dirty_bytes: number; clean_bytes: number; cache_block_reason: string; backpressure_status: string }>(m.ctl(['cache', 'inspect', '--json']));
    assert.equal(cache.cache_block_reason, 'none');
    assert.equal(cache.backpressure_status, 'clear');
    const cleared = json<{ dirty_bytes: number }>(m.ctl(['cache', 'clear', '--json']));
    assert.equal(typeof cleared.dirty_bytes, 'number');
    await m.stop();
  });

  it('local mode: the kernel keeps names, attributes and absent names past a second; a change through the mount shows at once', () => withKernelCaches(async () => {
    const m = await startMount();
    const address = json<{ metrics_address: string }>(m.ctl(['status', '--json'])).metrics_address;
    // libfuse's high-level API answers lookups with the getattr handler too.
    const getattrs = (result: string) => metric(address, new RegExp(`^aether_fuse_ops_total\\{op="getattr",result="${result}"\\}`));
    const f = join(m.mnt, 'kept');
    const absent = join(m.mnt, 'absent');
    writeFileSync(f, 'one');
    assert.equal(statSync(f).size, 3);
    assert.equal(existsSync(absent), false);
    await sleep(1500);
    const found = await getattrs('ok');
    const missing = await getattrs('ENOENT');
    assert.ok(missing >= 1, 'the first lookup of the absent name reached Aether');
    for (let i = 0; i < 20; i++) {
      assert.equal(statSync(f).size, 3);
      assert.equal(existsSync(absent), false);
    }
    assert.equal(await getattrs('ok'), found, 'stat after 1.5 s was answered by the kernel');
    assert.equal(await getattrs('ENOENT'), missing, 'the absent name after 1.5 s was answered by the kernel');
    appendFileSync(f, 'two');
    assert.equal(statSync(f).size, 6, 'a write drops the cached attributes');
    assert.ok((await getattrs('ok')) > found);
    writeFileSync(absent, 'here');
    assert.equal(readFileSync(absent, 'utf8'), 'here', 'creating the name replaces the cached absence');
    await m.stop();
  }));

  it('local mode: the cache holds what is not committed yet; committed data is read from the store, never copied back', async () => {
    const m = await startMount();
    const cacheBytes = () => json<{ dirty_bytes: number; clean_bytes: number }>(m.ctl(['cache', 'inspect', '--json']));
    json(m.ctl(['sync', 'pause', '--json']));
    const body = Buffer.alloc(300_000, 'p');
    writeFileSync(join(m.mnt, 'pending'), body);
    assert.equal(cacheBytes().dirty_bytes, body.length, 'dirty while the drain is paused');
    assert.ok(readFileSync(join(m.mnt, 'pending')).equals(body), 'read back from the cache');
    json(m.ctl(['sync', 'resume', '--json']));
    assert.equal(m.ctl(['sync', 'wait', '--timeout', '20']).code, 0);
    const committed = cacheBytes();
    assert.deepEqual([committed.dirty_bytes, committed.clean_bytes], [0, 0], 'committed: nothing left in the cache');
    // Out of the kernel's page cache, so the read below reaches Aether (and the store).
    writeFileSync('/proc/sys/vm/drop_caches', '1');
    const address = json<{ metrics_address: string }>(m.ctl(['status', '--json'])).metrics_address;
    const reads = () => metric(address, /^aether_fuse_ops_total\{op="read",result="ok"\}/);
    const before = await reads();
    assert.ok(readFileSync(join(m.mnt, 'pending')).equals(body), 'read back from the store');
    assert.ok((await reads()) > before, 'the read reached Aether');
    assert.equal(cacheBytes().clean_bytes, 0, 'reads are not copied into the cache');
    await m.stop();
  });

  it("under systemd's journal (JOURNAL_STREAM set) log lines carry no time of their own", async () => {
    const m = await startMount({ env: { JOURNAL_STREAM: '8:12345' } });
    m.proc.kill('SIGHUP');
    for (let i = 0; i < 100 && !/SIGHUP: configuration reloaded/.test(m.stderr()); i++) await sleep(50);
    assert.match(m.stderr(), /^aether: SIGHUP: configuration reloaded \(changed: nothing\)$/m);
    assert.equal(await m.stop(), 0);
  });

  it('config reload (command and SIGHUP) applies new thresholds live; a bad file keeps the running config', async () => {
    const dir = tempDir();
    const cfg = join(dir, 'aether.toml');
    writeFileSync(cfg, '[backpressure]\njournal_high_water_entries = 1000\n');
    const m = await startMount({ args: ['--config', cfg], env: { JOURNAL_STREAM: '' } });
    const thresholds = () => json<{ thresholds: { journal_high_water_entries: number } }>(m.ctl(['backpressure', 'status', '--json'])).thresholds.journal_high_water_entries;
    assert.equal(thresholds(), 1000);
    // The file changes under the running mount, which reloads it by itself too (the next test):
    // the command or the signal may find the change already applied.
    writeFileSync(cfg, '[backpressure]\njournal_high_water_entries = 2000\n');
    const r = json<{ reloaded: boolean; changed_sections: string[] }>(m.ctl(['config', 'reload', '--json'], { AFS_AETHER_CONFIG: cfg }));
    assert.equal(r.reloaded, true);
    assert.equal(thresholds(), 2000);
    writeFileSync(cfg, '[backpressure]\njournal_high_water_entries = 3000\n');
    m.proc.kill('SIGHUP');
    await sleep(500);
    assert.equal(thresholds(), 3000);
    // Log lines say when (UTC, ms), except under systemd's journal, which stamps them itself.
    assert.match(m.stderr(), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z aether: SIGHUP: configuration reloaded \(changed: (backpressure|nothing)\)$/m);
    assert.ok((await mountMetric(m, /^aether_config_reloads_total\{trigger="signal",outcome="success"\}/)) >= 1);
    assert.ok((await mountMetric(m, /^aether_config_reloads_total\{trigger="command",outcome="success"\}/)) >= 1);
    writeFileSync(cfg, '[backpressure]\njournal_high_water_entries = "lots"\n');
    const bad = m.ctl(['config', 'reload']);
    assert.equal(bad.code, 1);
    assert.match(bad.err, /reload failed, running configuration kept: .*journal_high_water_entries="lots"/);
    assert.equal(thresholds(), 3000);
    writeFileSync(cfg, 'journal_segment_bytes = 8192\n[backpressure]\njournal_high_water_entries = 3000\n');
    const restart = json<{ restart_required: string[] }>(m.ctl(['config', 'reload', '--json']));
    assert.deepEqual(restart.restart_required, ['AFS_AETHER_JOURNAL_SEGMENT_BYTES']);
    // --state-dir is an override: a state_dir in the file changes nothing, not even on reload.
    writeFileSync(cfg, 'state_dir = "/elsewhere"\njournal_segment_bytes = 8192\n[backpressure]\njournal_high_water_entries = 3000\n');
    assert.deepEqual(json<{ restart_required: string[] }>(m.ctl(['config', 'reload', '--json'])).restart_required, ['AFS_AETHER_JOURNAL_SEGMENT_BYTES']);
    assert.equal(json<{ state_dir: string }>(m.ctl(['status', '--json'])).state_dir, m.stateDir);
    await m.stop();
  });

  it('u64 settings past 2^53-1 (up to 2^64-1) start a mount and reload live, meaning "practically never"', async () => {
    const U64_MAX = '18446744073709551615';
    const dir = tempDir();
    const cfg = join(dir, 'aether.toml');
    writeFileSync(cfg, 'journal_sync_backlog_bytes = 1048576\n');
    const huge = ['JOURNAL_SYNC_INTERVAL_MS', 'JOURNAL_SEGMENT_BYTES', 'JOURNAL_HIGH_WATER_BYTES', 'JOURNAL_LOW_WATER_BYTES', 'JOURNAL_HIGH_WATER_ENTRIES', 'JOURNAL_LOW_WATER_ENTRIES', 'JOURNAL_MAX_AGE_SECS', 'CACHE_DIRTY_HIGH_WATER_BYTES', 'CACHE_DIRTY_LOW_WATER_BYTES', 'CACHE_MAX_BYTES', 'CACHE_DIRTY_MAX_BYTES'];
    const env = { ...Object.fromEntries(huge.map((k) => [`AFS_AETHER_${k}`, U64_MAX])), AFS_AETHER_JOURNAL_CLEAR_AGE_SECS: '18446744073709551614' };
    const m = await startMount({ args: ['--config', cfg], env });
    const backlogFlushes = () => mountMetric(m, /^aether_journal_wal_flush_total\{reason="backlog",outcome="success"\}/);
    const data = randomBytes(4 << 20);
    writeFileSync(join(m.mnt, 'a.bin'), data);
    assert.ok((await backlogFlushes()) >= 1, 'a 4 MiB write past a 1 MiB backlog flushes');
    assert.ok(readFileSync(join(m.mnt, 'a.bin')).equals(data));
    writeFileSync(cfg, `journal_sync_backlog_bytes = ${U64_MAX}\n`);
    const r = json<{ reloaded: boolean; observer_errors: string[] }>(m.ctl(['config', 'reload', '--json']));
    assert.deepEqual(r.observer_errors, []);
    assert.equal(r.reloaded, true);
    const before = await backlogFlushes();
    writeFileSync(join(m.mnt, 'b.bin'), data);
    await sleep(300);
    assert.equal(await backlogFlushes(), before, 'no backlog flush once the backlog is 2^64-1 bytes');
    assert.equal(json<{ status: string }>(m.ctl(['backpressure', 'status', '--json'])).status, 'clear');
    assert.equal(m.ctl(['journal', 'flush']).code, 0);
    assert.doesNotMatch(m.stderr(), /observer|RangeError|must be/);
    await m.stop();
    // And after a restart, with the journal of those writes.
    const again = await startMount({ args: ['--config', cfg], env, mnt: m.mnt, stateDir: m.stateDir });
    assert.ok(readFileSync(join(again.mnt, 'b.bin')).equals(data));
    await again.stop();
  });

  it('a change to the TOML file reloads it by itself; a bad change keeps the running configuration; both are counted', async () => {
    const dir = tempDir();
    const cfg = join(dir, 'aether.toml');
    writeFileSync(cfg, '[backpressure]\njournal_high_water_entries = 1000\n');
    const m = await startMount({ args: ['--config', cfg] });
    const thresholds = () => json<{ thresholds: { journal_high_water_entries: number } }>(m.ctl(['backpressure', 'status', '--json'])).thresholds.journal_high_water_entries;
    const until = async (what: string, ok: () => boolean | Promise<boolean>) => {
      const deadline = Date.now() + 10_000;
      while (!(await ok())) {
        assert.ok(Date.now() < deadline, what);
        await sleep(100);
      }
    };
    assert.equal(thresholds(), 1000);
    writeFileSync(cfg, '[backpressure]\njournal_high_water_entries = 4000\n');
    await until('the new value is applied', () => thresholds() === 4000);
    await until('the reload is logged', () => /aether\.toml changed: configuration reloaded \(changed: backpressure\)/.test(m.stderr()));
    assert.equal(await mountMetric(m, /^aether_config_reloads_total\{trigger="file",outcome="success"\}/), 1);
    assert.ok((await mountMetric(m, /^aether_config_last_reload_success_timestamp_seconds /)) > Date.now() / 1000 - 60);
    // An editor's save: a new file renamed over the old one.
    writeFileSync(join(dir, 'aether.toml.new'), '[backpressure]\njournal_high_water_entries = "lots"\n');
    renameSync(join(dir, 'aether.toml.new'), cfg);
    await until('the bad change is counted', async () => (await mountMetric(m, /^aether_config_reloads_total\{trigger="file",outcome="error"\}/)) === 1);
    assert.equal(thresholds(), 4000, 'the running configuration is kept');
    await until('the failure is logged', () => /configuration reload failed, keeping the running configuration: .*journal_high_water_entries="lots"/.test(m.stderr()));
    await m.stop();
  });

  it('sync wait: times out (exit 1) while paused, returns once everything is committed', async () => {
    const m = await startMount();
    assert.equal(m.ctl(['sync', 'pause']).code, 0);
    for (let i = 0; i < 20; i++) writeFileSync(join(m.mnt, `f${i}`), 'x'.repeat(1000));
    const waited = m.ctl(['sync', 'wait', '--timeout', '1']);
    assert.equal(waited.code, 1);
    assert.match(waited.err, /^aether: sync wait: \d+ entries, \d+ bytes pending \(sync is paused\)$/m);
    assert.match(waited.err, /timed out after 1 s with \d+ entries still pending \(sync is paused\)/);
    const waitedJson = m.ctl(['sync', 'wait', '--timeout', '0', '--json']);
    assert.equal(waitedJson.code, 1);
    const late = JSON.parse(waitedJson.out) as { committed: boolean; pending_entries: number; sync: string };
    assert.equal(late.committed, false);
    assert.ok(late.pending_entries > 0);
    assert.equal(late.sync, 'paused');
    assert.equal(m.ctl(['sync', 'resume']).code, 0);
    const done = m.ctl(['sync', 'wait', '--timeout', '30']);
    assert.equal(done.code, 0, done.err);
    assert.equal(done.out, 'all committed\n');
    const doneJson = m.ctl(['sync', 'wait', '--json']);
    assert.equal(doneJson.code, 0);
    assert.deepEqual(json(doneJson), { committed: true, pending_entries: 0, pending_bytes: 0, sync: 'running' });
    assert.equal(doneJson.err, '');
    assert.equal(json<{ journal: { pending_entries: number } }>(m.ctl(['status', '--json'])).journal.pending_entries, 0);
    assert.equal(m.ctl(['sync', 'wait', '--timeout', 'soon']).code, 2);
    await m.stop();
  });

  it('store reclaim gives back the space of removed and overwritten files; what is kept reads back, also after a restart', async () => {
    const m = await startMount();
    const packs = () => readdirSync(join(m.stateDir, 'store', 'packs')).reduce((sum, f) => sum + statSync(join(m.stateDir, 'store', 'packs', f)).size, 0);
    const kept = randomBytes(300_000);
    writeFileSync(join(m.mnt, 'gone'), randomBytes(40 << 20));
    writeFileSync(join(m.mnt, 'kept'), kept);
    for (let i = 0; i < 3; i++) writeFileSync(join(m.mnt, 'rewritten'), randomBytes(8 << 20));
    const rewritten = randomBytes(8 << 20);
    writeFileSync(join(m.mnt, 'rewritten'), rewritten);
    unlinkSync(join(m.mnt, 'gone'));
    assert.equal(m.ctl(['sync', 'wait']).code, 0);
    const before = packs();
    assert.ok(before > 30 << 20, `${before}`);
    const r = json<{ freedBytes: number; packBytes: number }>(m.ctl(['store', 'reclaim', '--json']));
    const after = packs();
    assert.equal(r.packBytes, after);
    assert.ok(after < 9 << 20, `about 8.3 MiB live, ${after} bytes of packs left`);
    assert.ok(r.freedBytes >= before - after, JSON.stringify(r));
    assert.equal(await mountMetric(m, /^aether_store_pack_bytes /), after);
    assert.ok((await mountMetric(m, /^aether_store_reclaimed_bytes_total /)) >= before - after);
    assert.ok(readFileSync(join(m.mnt, 'kept')).equals(kept));
    assert.ok(readFileSync(join(m.mnt, 'rewritten')).equals(rewritten));
    assert.equal(await m.stop(), 0);
    const again = await startMount({ mnt: m.mnt, stateDir: m.stateDir });
    assert.ok(readFileSync(join(again.mnt, 'kept')).equals(kept));
    assert.ok(readFileSync(join(again.mnt, 'rewritten')).equals(rewritten));
    assert.equal(await again.stop(), 0);
  });

  it('control commands without a running mount fail with one clear line and exit 1', () => {
    const r = spawnSync(process.execPath, [bin, 'cache', 'inspect', '--state-dir', tempDir()], { encoding: 'utf8' });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^aether: cannot reach the mount's control socket .*control\.sock: no mount is running there\n$/);
  });

  it('SIGTERM stops writes, flushes with reason shutdown and unmounts', async () => {
    const m = await startMount();
    writeFileSync(join(m.mnt, 'f'), 'x');
    assert.equal(await m.stop(), 0);
    assert.match(m.stdout(), /aether: unmounted/);
    assert.match(m.stderr(), /SIGTERM: stopping/);
    const mounts = spawnSync('cat', ['/proc/mounts'], { encoding: 'utf8' }).stdout;
    assert.ok(!mounts.includes(m.mnt), 'still mounted after SIGTERM');
  });
});
