import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');
const bin = join(repo, 'packages', 'aether-remote', 'bin', 'aether.js');

/** Runs `aether ARGS` in a fresh directory with a clean environment plus `env`. */
function aether(args: string[], opts: { env?: Record<string, string>; toml?: string; cwd?: string } = {}) {
  const cwd = opts.cwd ?? mkdtempSync(join(tmpdir(), 'aether-cli-'));
  if (opts.toml !== undefined) writeFileSync(join(cwd, 'aether.toml'), opts.toml);
  const r = spawnSync(process.execPath, [bin, ...args], { cwd, env: { PATH: process.env.PATH ?? '', ...opts.env }, encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('aether config show', () => {
  it('prints every resolved value with the layer it came from', () => {
    const r = aether(['config', 'show'], { toml: '[cache]\nmax_bytes = 5\n', env: { AFS_AETHER_JOURNAL_SYNC_POLICY: 'manual' } });
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^journal_sync_policy = "manual" +# env AFS_AETHER_JOURNAL_SYNC_POLICY$/m);
    assert.match(r.out, /^\[cache\]\nmax_bytes = 5 +# file aether\.toml:cache\.max_bytes$/m);
    assert.match(r.out, /^journal_sync_interval_ms = 5 +# default$/m);
    assert.match(r.out, /^\[bridge\.reconnect_backoff\]$/m);
    assert.match(r.out, /^jitter_percent = 20\.0 +# default$/m);
  });
  it('--json is the resolved values alone, shaped exactly like aether.toml', () => {
    const r = aether(['config', 'show', '--json'], { env: { AFS_AETHER_RECONNECT_JITTER_PERCENT: '12.5' } });
    assert.equal(r.code, 0, r.err);
    const j = JSON.parse(r.out) as Record<string, unknown>;
    assert.deepEqual(Object.keys(j), [
      'journal_sync_policy',
      'journal_sync_interval_ms',
      'journal_sync_backlog_bytes',
      'journal_segment_bytes',
      'state_dir',
      'metrics_listen',
      'backpressure',
      'cache',
      'bridge',
    ]);
    assert.deepEqual(j.cache, { max_bytes: 1073741824, dirty_max_bytes: 268435456 });
    assert.deepEqual(j.bridge, { url: '', token: '', reconnect_backoff: { start_ms: 1000, max_ms: 30000, multiplier: 2, jitter_percent: 12.5 } });
    assert.equal((j.backpressure as Record<string, number>).journal_max_age_seconds, 30);
  });
  it('u64 values above 2^53 are shown and compared exactly, as written', () => {
    const env = { AFS_AETHER_JOURNAL_SYNC_BACKLOG_BYTES: '18446744073709551615', AFS_AETHER_JOURNAL_HIGH_WATER_BYTES: '9007199254740993' };
    const text = aether(['config', 'show'], { env });
    assert.equal(text.code, 0, text.err);
    assert.match(text.out, /^journal_sync_backlog_bytes = 18446744073709551615 +# env/m);
    assert.match(text.out, /^journal_high_water_bytes = 9007199254740993 +# env/m);
    const json = aether(['config', 'show', '--json'], { env });
    assert.match(json.out, /^ {2}"journal_sync_backlog_bytes": 18446744073709551615,$/m);
    assert.match(json.out, /^ {4}"journal_high_water_bytes": 9007199254740993,$/m);
    const bad = aether(['config', 'validate'], { env: { AFS_AETHER_RECONNECT_START_MS: '9007199254740993', AFS_AETHER_RECONNECT_MAX_MS: '9007199254740992' } });
    assert.equal(bad.code, 2, 'start one above max, which doubles cannot tell apart');
    assert.match(bad.err, /^aether: AFS_AETHER_RECONNECT_START_MS=9007199254740993: must be less than or equal to max_ms \(9007199254740992, from AFS_AETHER_RECONNECT_MAX_MS\)$/m);
    const good = aether(['config', 'validate'], { env: { AFS_AETHER_JOURNAL_MAX_AGE_SECS: '9007199254740993', AFS_AETHER_JOURNAL_CLEAR_AGE_SECS: '9007199254740992' } });
    assert.equal(good.code, 0, good.err);
  });
  it('never prints the bridge token in full', () => {
    const env = { AFS_AETHER_BRIDGE_TOKEN: 'super-secret-token-value' };
    for (const args of [['config', 'show'], ['config', 'show', '--json']]) {
      const r = aether(args, { env });
      assert.equal(r.code, 0);
      assert.ok(!r.out.includes('super-secret'), r.out);
      assert.match(r.out, /<redacted: 24 chars>/);
    }
  });
  it('an invalid configuration prints the problems and exits 2', () => {
    const r = aether(['config', 'show'], { env: { AFS_AETHER_JOURNAL_SYNC_BACKLOG_BYTES: '2MiB' } });
    assert.equal(r.code, 2);
    assert.equal(r.out, '');
    assert.match(r.err, /^aether: AFS_AETHER_JOURNAL_SYNC_BACKLOG_BYTES="2MiB": must be an unsigned integer/m);
  });
  it('clamp warnings go to stderr and the command succeeds', () => {
    const r = aether(['config', 'show', '--json'], { env: { AFS_AETHER_CACHE_DIRTY_HIGH_WATER_BYTES: '10', AFS_AETHER_CACHE_DIRTY_LOW_WATER_BYTES: '20' } });
    assert.equal(r.code, 0);
    assert.match(r.err, /^aether: warning: AFS_AETHER_CACHE_DIRTY_LOW_WATER_BYTES=20: above cache_dirty_high_water_bytes \(10\); clamped down to 10$/m);
    assert.equal((JSON.parse(r.out) as { backpressure: Record<string, number> }).backpressure.cache_dirty_low_water_bytes, 10);
  });
});

describe('aether config validate', () => {
  it('exits 0 on a valid configuration', () => {
    const r = aether(['config', 'validate'], { toml: '[backpressure]\njournal_max_age_seconds = 45\njournal_clear_age_seconds = 15\n' });
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /configuration is valid \(file: aether\.toml\)/);
  });
  it('exits 2 with one line per problem, all together', () => {
    const r = aether(['config', 'validate'], {
      toml: '[backpressure]\njournal_max_age_seconds = 10\n[bridge.reconnect_backoff]\njitter_percent = 101\n',
      env: { AFS_AETHER_RECONNECT_START_MS: '0' },
    });
    assert.equal(r.code, 2);
    const lines = r.err.trim().split('\n');
    assert.deepEqual(lines, [
      'aether: AFS_AETHER_RECONNECT_START_MS=0: must be greater than 0',
      'aether: aether.toml:bridge.reconnect_backoff.jitter_percent=101: must be at least 0 and at most 100',
      'aether: aether.toml:backpressure.journal_max_age_seconds=10: must be strictly greater than journal_clear_age_seconds (10, from default)',
      'aether: configuration invalid (3 problems)',
    ]);
  });
  it('a default that breaks a rule with a value set elsewhere is named by its key', () => {
    const r = aether(['config', 'validate'], { env: { AFS_AETHER_JOURNAL_CLEAR_AGE_SECS: '700' } });
    assert.equal(r.code, 2);
    assert.deepEqual(r.err.trim().split('\n'), [
      'aether: default backpressure.journal_max_age_seconds=30: must be strictly greater than journal_clear_age_seconds (700, from AFS_AETHER_JOURNAL_CLEAR_AGE_SECS)',
      'aether: configuration invalid (1 problem)',
    ]);
  });
  it('--config naming a missing file exits 2', () => {
    const r = aether(['config', 'validate', '--config', 'nope.toml']);
    assert.equal(r.code, 2);
    assert.equal(r.err, 'aether: --config nope.toml: file not found\naether: configuration invalid (1 problem)\n');
  });
  it('AFS_AETHER_CONFIG naming a file that is not TOML exits 2', () => {
    const cwd = mkdtempSync(join(tmpdir(), 'aether-cli-'));
    writeFileSync(join(cwd, 'bad.toml'), '[backpressure\n');
    const r = aether(['config', 'validate'], { cwd, env: { AFS_AETHER_CONFIG: 'bad.toml' } });
    assert.equal(r.code, 2);
    assert.match(r.err, /^aether: bad\.toml: not valid TOML: /);
  });
});

describe('aether config explain', () => {
  it('by env var prints the reference page, identical to docs/config', () => {
    const r = aether(['config', 'explain', 'AFS_AETHER_JOURNAL_SYNC_BACKLOG_BYTES']);
    assert.equal(r.code, 0);
    assert.equal(r.out, readFileSync(join(repo, 'docs', 'config', 'AFS_AETHER_JOURNAL_SYNC_BACKLOG_BYTES.md'), 'utf8'));
  });
  it('by TOML key, full or bare', () => {
    for (const name of ['backpressure.journal_max_age_seconds', 'journal_max_age_seconds']) {
      const r = aether(['config', 'explain', name]);
      assert.equal(r.code, 0);
      assert.match(r.out, /^# AFS_AETHER_JOURNAL_MAX_AGE_SECS$/m);
    }
  });
  it('an unknown name exits 2 with one line', () => {
    const r = aether(['config', 'explain', 'NOPE']);
    assert.equal(r.code, 2);
    assert.equal(r.err.trim().split('\n').length, 1);
    assert.match(r.err, /^aether: unknown setting 'NOPE'/);
  });
});

describe('the aether command line', () => {
  it('output to a reader that has gone (`aether config show | true`) is dropped: exit 0, no stack trace', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'aether-epipe-'));
    for (let i = 0; i < 3; i++) {
      const p = spawn(process.execPath, [bin, 'config', 'show'], { cwd, env: { PATH: process.env.PATH ?? '' }, stdio: ['ignore', 'pipe', 'pipe'] });
      p.stdout.destroy();
      let err = '';
      p.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const code = await new Promise<number | null>((resolve) => p.once('close', resolve));
      assert.equal(code, 0, err);
      assert.equal(err, '');
    }
  });
  it('an unknown command or flag exits 2 with a one-line error and no stack trace', () => {
    for (const args of [['frobnicate'], ['config', 'show', '--bogus'], ['config', 'explain']]) {
      const r = aether(args);
      assert.equal(r.code, 2, args.join(' '));
      assert.match(r.err, /^aether: /);
      assert.ok(!r.err.includes('    at '), r.err);
    }
  });
  it('an empty value for any flag or argument exits 2 naming it, never meaning unset or the working directory', () => {
    const cases: [string[], string][] = [
      [['mount', ''], 'MOUNTPOINT'],
      [['mount', 'mnt', '--state-dir', ''], '--state-dir'],
      [['mount', 'mnt', '--bridge', ''], '--bridge'],
      [['mount', 'mnt', '--token', ''], '--token'],
      [['status', '--state-dir', ''], '--state-dir'],
      [['journal', 'inspect', '--state-dir', ''], '--state-dir'],
      [['config', 'show', '--config', ''], '--config'],
      [['sync', 'wait', '--timeout', ''], '--timeout'],
      [['hub', '--data', ''], '--data'],
    ];
    for (const [args, name] of cases) {
      const r = aether(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
      assert.equal(r.err, `aether: ${name}: must not be empty\n`, args.join(' '));
      assert.equal(r.out, '');
    }
  });
  it('--help exits 0', () => {
    assert.equal(aether(['--help']).code, 0);
  });
  it('runs as `npx aether` from the repository root', () => {
    const r = spawnSync('npx', ['--no-install', 'aether', 'config', 'validate'], { cwd: repo, encoding: 'utf8', env: { ...process.env, AFS_AETHER_CONFIG: '' } });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /configuration is valid/);
  });
});
