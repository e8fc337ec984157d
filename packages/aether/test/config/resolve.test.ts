import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, jitterFactor, resolveConfig, resolveConfigDetailed, SETTINGS, settingName } from '../../src/config/index.js';
import { problemsOf, resolveWith, tempDir } from './helpers.js';

/** The DESIGN section 3 table, written out independently of the schema. */
const DESIGN_TABLE: [toml: string, env: string, override: string | undefined, def: number | string][] = [
  ['journal_sync_policy', 'AFS_AETHER_JOURNAL_SYNC_POLICY', 'journal_sync_policy', 'interval'],
  ['journal_sync_interval_ms', 'AFS_AETHER_JOURNAL_SYNC_INTERVAL_MS', 'journal_sync_interval_ms', 5],
  ['journal_sync_backlog_bytes', 'AFS_AETHER_JOURNAL_SYNC_BACKLOG_BYTES', 'journal_sync_backlog_bytes', 2097152],
  ['backpressure.journal_high_water_bytes', 'AFS_AETHER_JOURNAL_HIGH_WATER_BYTES', 'journal_backpressure_high_bytes', 67108864],
  ['backpressure.journal_low_water_bytes', 'AFS_AETHER_JOURNAL_LOW_WATER_BYTES', 'journal_backpressure_low_bytes', 50331648],
  ['backpressure.journal_high_water_entries', 'AFS_AETHER_JOURNAL_HIGH_WATER_ENTRIES', 'journal_backpressure_high_entries', 100000],
  ['backpressure.journal_low_water_entries', 'AFS_AETHER_JOURNAL_LOW_WATER_ENTRIES', 'journal_backpressure_low_entries', 50000],
  ['backpressure.journal_max_age_seconds', 'AFS_AETHER_JOURNAL_MAX_AGE_SECS', 'journal_backpressure_high_age', 30],
  ['backpressure.journal_clear_age_seconds', 'AFS_AETHER_JOURNAL_CLEAR_AGE_SECS', 'journal_backpressure_clear_age', 10],
  ['backpressure.cache_dirty_high_water_bytes', 'AFS_AETHER_CACHE_DIRTY_HIGH_WATER_BYTES', 'cache_backpressure_dirty_high_bytes', 67108864],
  ['backpressure.cache_dirty_low_water_bytes', 'AFS_AETHER_CACHE_DIRTY_LOW_WATER_BYTES', 'cache_backpressure_dirty_low_bytes', 50331648],
  ['backpressure.cache_min_free_bytes', 'AFS_AETHER_CACHE_MIN_FREE_BYTES', 'cache_backpressure_min_free_bytes', 536870912],
  ['backpressure.cache_resume_free_bytes', 'AFS_AETHER_CACHE_RESUME_FREE_BYTES', 'cache_backpressure_resume_free_bytes', 1073741824],
  ['cache.max_bytes', 'AFS_AETHER_CACHE_MAX_BYTES', 'cache_max_bytes', 1073741824],
  ['cache.dirty_max_bytes', 'AFS_AETHER_CACHE_DIRTY_MAX_BYTES', 'cache_dirty_max_bytes', 268435456],
  ['state_dir', 'AFS_AETHER_STATE_DIR', 'state_dir', '.aether'],
  ['metrics_listen', 'AFS_AETHER_METRICS_LISTEN', 'metrics_listen', '127.0.0.1:9464'],
  ['bridge.url', 'AFS_AETHER_BRIDGE_URL', 'bridge_url', ''],
  ['bridge.token', 'AFS_AETHER_BRIDGE_TOKEN', 'bridge_token', ''],
  ['bridge.reconnect_backoff.start_ms', 'AFS_AETHER_RECONNECT_START_MS', undefined, 1000],
  ['bridge.reconnect_backoff.max_ms', 'AFS_AETHER_RECONNECT_MAX_MS', undefined, 30000],
  ['bridge.reconnect_backoff.multiplier', 'AFS_AETHER_RECONNECT_MULTIPLIER', undefined, 2.0],
  ['bridge.reconnect_backoff.jitter_percent', 'AFS_AETHER_RECONNECT_JITTER_PERCENT', undefined, 20.0],
];

function get(config: object, dotted: string): unknown {
  return dotted.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], config);
}

describe('schema covers the DESIGN table', () => {
  for (const [toml, env, override, def] of DESIGN_TABLE) {
    it(`${toml}: env ${env}, override ${override ?? '—'}, default ${def}`, () => {
      const s = SETTINGS.find((x) => settingName(x) === toml);
      assert.ok(s, `no schema row for ${toml}`);
      assert.equal(s.env, env);
      assert.equal(s.override, override);
      assert.equal(s.default, def);
      assert.equal(get(resolveWith().config, toml), def);
    });
  }
  it('every row has documentation and a section', () => {
    for (const s of SETTINGS) {
      assert.ok(s.doc.whatItDoes.length > 0 && s.doc.example.explanation.length > 0, s.env);
      assert.match(s.env, /^AFS_AETHER_[A-Z_]+$/);
    }
  });
  it('env names and override fields are unique', () => {
    assert.equal(new Set(SETTINGS.map((s) => s.env)).size, SETTINGS.length);
    const fields = SETTINGS.flatMap((s) => (s.override ? [s.override] : []));
    assert.equal(new Set(fields).size, fields.length);
  });
});

describe('layers: defaults < aether.toml < environment < overrides', () => {
  const toml = 'journal_sync_backlog_bytes = 111\n';
  it('default when nothing is set', () => {
    const r = resolveWith();
    assert.equal(r.config.journal_sync_backlog_bytes, 2097152);
    assert.deepEqual(r.sources.get('journal_sync_backlog_bytes'), { layer: 'default', where: 'default' });
  });
  it('file beats default', () => {
    const r = resolveWith({ toml });
    assert.equal(r.config.journal_sync_backlog_bytes, 111);
    assert.deepEqual(r.sources.get('journal_sync_backlog_bytes'), { layer: 'file', where: 'aether.toml:journal_sync_backlog_bytes' });
  });
  it('environment beats file', () => {
    const r = resolveWith({ toml, env: { AFS_AETHER_JOURNAL_SYNC_BACKLOG_BYTES: '222' } });
    assert.equal(r.config.journal_sync_backlog_bytes, 222);
    assert.equal(r.sources.get('journal_sync_backlog_bytes')?.layer, 'env');
  });
  it('override beats environment', () => {
    const r = resolveWith({ toml, env: { AFS_AETHER_JOURNAL_SYNC_BACKLOG_BYTES: '222' }, overrides: { journal_sync_backlog_bytes: 333 } });
    assert.equal(r.config.journal_sync_backlog_bytes, 333);
    assert.deepEqual(r.sources.get('journal_sync_backlog_bytes'), { layer: 'override', where: 'ConfigOverrides.journal_sync_backlog_bytes' });
  });
  it('a bad lower layer still fails even when a higher layer sets the same setting', () => {
    const lines = problemsOf({ toml: 'journal_sync_backlog_bytes = "2MiB"\n', env: { AFS_AETHER_JOURNAL_SYNC_BACKLOG_BYTES: '5' } });
    assert.equal(lines.length, 1);
    assert.match(lines[0] ?? '', /^aether\.toml:journal_sync_backlog_bytes="2MiB": must be a TOML integer/);
  });
  it('the config is frozen, deeply', () => {
    const c = resolveConfig({ cwd: tempDir(), env: {} });
    assert.ok(Object.isFrozen(c) && Object.isFrozen(c.backpressure) && Object.isFrozen(c.bridge.reconnect_backoff));
    assert.throws(() => {
      (c as { journal_sync_interval_ms: number }).journal_sync_interval_ms = 9;
    }, TypeError);
  });
  it('overrides for every field apply', () => {
    const r = resolveWith({ overrides: { journal_backpressure_high_age: 60, cache_backpressure_dirty_low_bytes: 7, bridge_url: 'ws://h:1', journal_sync_policy: 'manual' } });
    assert.equal(r.config.backpressure.journal_max_age_seconds, 60);
    assert.equal(r.config.backpressure.cache_dirty_low_water_bytes, 7);
    assert.equal(r.config.bridge.url, 'ws://h:1');
    assert.equal(r.config.journal_sync_policy, 'manual');
  });
});

describe('TOML sections exactly as the seeds say', () => {
  it('journal_sync_backlog_bytes is top-level', () => {
    assert.equal(resolveWith({ toml: 'journal_sync_backlog_bytes = 1048576\n' }).config.journal_sync_backlog_bytes, 1048576);
    assert.match(problemsOf({ toml: '[backpressure]\njournal_sync_backlog_bytes = 1\n' })[0] ?? '', /aether\.toml:backpressure\.journal_sync_backlog_bytes: unknown setting/);
  });
  it('[backpressure] journal_max_age_seconds and cache_dirty_low_water_bytes', () => {
    const c = resolveWith({ toml: '[backpressure]\njournal_max_age_seconds = 45\njournal_clear_age_seconds = 15\ncache_dirty_low_water_bytes = 1000\n' }).config;
    assert.equal(c.backpressure.journal_max_age_seconds, 45);
    assert.equal(c.backpressure.journal_clear_age_seconds, 15);
    assert.equal(c.backpressure.cache_dirty_low_water_bytes, 1000);
    assert.match(problemsOf({ toml: 'journal_max_age_seconds = 45\n' })[0] ?? '', /unknown setting/);
  });
  it('[bridge.reconnect_backoff] start_ms and jitter_percent', () => {
    const c = resolveWith({ toml: '[bridge.reconnect_backoff]\nstart_ms = 1500\njitter_percent = 12.5\n' }).config;
    assert.equal(c.bridge.reconnect_backoff.start_ms, 1500);
    assert.equal(c.bridge.reconnect_backoff.jitter_percent, 12.5);
    assert.match(problemsOf({ toml: '[bridge]\nstart_ms = 1500\n' })[0] ?? '', /aether\.toml:bridge\.start_ms: unknown setting/);
  });
  it('dotted keys and nested tables mean the same', () => {
    const c = resolveWith({ toml: 'bridge.reconnect_backoff.max_ms = 9000\n[cache]\nmax_bytes = 5\n' }).config;
    assert.equal(c.bridge.reconnect_backoff.max_ms, 9000);
    assert.equal(c.cache.max_bytes, 5);
  });
  it('a table given as a plain value is the wrong TOML type', () => {
    assert.match(problemsOf({ toml: 'backpressure = 5\n' })[0] ?? '', /^aether\.toml:backpressure=5: must be a TOML table \[backpressure\]/);
  });
  it('TOML values of the wrong TOML type are errors', () => {
    const lines = problemsOf({ toml: 'journal_sync_interval_ms = 5.0\njournal_sync_policy = 1\n[cache]\nmax_bytes = "1024"\n[bridge.reconnect_backoff]\njitter_percent = "20"\n' });
    assert.equal(lines.length, 4, lines.join('\n'));
    // Shown as written (5.0, not 5, which would read as a valid integer).
    assert.ok(lines.some((l) => /^aether\.toml:journal_sync_interval_ms=5\.0: must be a TOML integer/.test(l)));
    assert.ok(lines.some((l) => /^aether\.toml:journal_sync_policy=1: must be a TOML string/.test(l)));
    assert.ok(lines.some((l) => /^aether\.toml:cache\.max_bytes="1024": must be a TOML integer/.test(l)));
    assert.ok(lines.some((l) => /^aether\.toml:bridge\.reconnect_backoff\.jitter_percent="20": must be a TOML number \(numeric and non-negative/.test(l)));
  });
  it('TOML hex and underscore integers are refused for u64 settings', () => {
    const lines = problemsOf({ toml: 'journal_sync_backlog_bytes = 0x200000\n[cache]\nmax_bytes = 1_000\n' });
    assert.equal(lines.length, 2);
    assert.match(lines[0] ?? '', /journal_sync_backlog_bytes=0x200000: must be an unsigned integer of decimal digits only/);
  });
  it('...also in inline tables, under quoted keys and after strings that look like TOML', () => {
    const toml = [
      "note = '''",
      'journal_sync_backlog_bytes = 0x7',
      "'''",
      '[bridge]',
      'reconnect_backoff = { start_ms = 0x5DC, max_ms = 60000 }',
      '[backpressure]',
      "'journal_clear_age_seconds' = 0x2D # a comment = 1",
      '"journal_high_water_entries" = 0b11',
    ].join('\n');
    const decimal = problemsOf({ toml }).filter((l) => l.includes('decimal digits only'));
    assert.deepEqual(
      decimal.map((l) => l.split(':')[1]),
      ['bridge.reconnect_backoff.start_ms=0x5DC', 'backpressure.journal_clear_age_seconds=0x2D', 'backpressure.journal_high_water_entries=0b11'],
      decimal.join('\n'),
    );
    const inline = problemsOf({ toml: 'backpressure = { cache_dirty_low_water_bytes = 1_000, journal_max_age_seconds = 0o77 }\n' });
    assert.deepEqual(
      inline.map((l) => l.split(':')[1]),
      ['backpressure.cache_dirty_low_water_bytes=1_000', 'backpressure.journal_max_age_seconds=0o77'],
      inline.join('\n'),
    );
  });
  it('decimal values in inline tables and under quoted keys are read as written', () => {
    const c = resolveWith({ toml: 'backpressure = { "journal_max_age_seconds" = 45, cache_dirty_low_water_bytes = 1000 }\n[bridge]\nreconnect_backoff = { start_ms = 1500 }\n' }).config;
    assert.equal(c.backpressure.journal_max_age_seconds, 45);
    assert.equal(c.backpressure.cache_dirty_low_water_bytes, 1000);
    assert.equal(c.bridge.reconnect_backoff.start_ms, 1500);
  });
});

describe('value rules from the seeds', () => {
  it('seed 000: unit suffixes are refused (2MiB) and the error names variable, value and rule', () => {
    const lines = problemsOf({ env: { AFS_AETHER_JOURNAL_SYNC_BACKLOG_BYTES: '2MiB' } });
    assert.deepEqual(lines, [
      'AFS_AETHER_JOURNAL_SYNC_BACKLOG_BYTES="2MiB": must be an unsigned integer of decimal digits only (u64 bytes, at most 18446744073709551615; no sign, unit suffix, spaces, hex or exponent)',
    ]);
  });
  it('seed 000: 0 is valid for the backlog threshold (it disables the trigger)', () => {
    assert.equal(resolveWith({ env: { AFS_AETHER_JOURNAL_SYNC_BACKLOG_BYTES: '0' } }).config.journal_sync_backlog_bytes, 0);
  });
  it('seed 000: values up to 2^64-1 are accepted, above are refused', () => {
    assert.equal(resolveWith({ env: { AFS_AETHER_JOURNAL_SYNC_BACKLOG_BYTES: '18446744073709551615' } }).config.journal_sync_backlog_bytes, Number.MAX_SAFE_INTEGER);
    assert.equal(problemsOf({ env: { AFS_AETHER_JOURNAL_SYNC_BACKLOG_BYTES: '18446744073709551616' } }).length, 1);
  });
  it('seed 001: max age equal to clear age fails validation', () => {
    const lines = problemsOf({ env: { AFS_AETHER_JOURNAL_MAX_AGE_SECS: '10' } });
    assert.deepEqual(lines, ['AFS_AETHER_JOURNAL_MAX_AGE_SECS=10: must be strictly greater than journal_clear_age_seconds (10, from default)']);
  });
  it('seed 001: max age below clear age fails; above passes', () => {
    assert.equal(problemsOf({ toml: '[backpressure]\njournal_max_age_seconds = 5\njournal_clear_age_seconds = 6\n' }).length, 1);
    assert.equal(resolveWith({ env: { AFS_AETHER_JOURNAL_MAX_AGE_SECS: '11' } }).config.backpressure.journal_max_age_seconds, 11);
  });
  it('seed 001: max age 0 is refused (never above the clear age)', () => {
    assert.match(problemsOf({ env: { AFS_AETHER_JOURNAL_MAX_AGE_SECS: '0', AFS_AETHER_JOURNAL_CLEAR_AGE_SECS: '0' } })[0] ?? '', /strictly greater/);
  });
  it('seed 002: dirty low-water above high-water is clamped down with a warning, not an error', () => {
    const r = resolveWith({ env: { AFS_AETHER_CACHE_DIRTY_HIGH_WATER_BYTES: '1000', AFS_AETHER_CACHE_DIRTY_LOW_WATER_BYTES: '5000' } });
    assert.equal(r.config.backpressure.cache_dirty_low_water_bytes, 1000);
    assert.deepEqual(r.warnings, ['AFS_AETHER_CACHE_DIRTY_LOW_WATER_BYTES=5000: above cache_dirty_high_water_bytes (1000); clamped down to 1000']);
  });
  it('seed 002: low-water 0 is allowed', () => {
    assert.equal(resolveWith({ env: { AFS_AETHER_CACHE_DIRTY_LOW_WATER_BYTES: '0' } }).config.backpressure.cache_dirty_low_water_bytes, 0);
  });
  it('a default clamped by a set high-water is named by its key in the warning', () => {
    const r = resolveWith({ env: { AFS_AETHER_JOURNAL_HIGH_WATER_BYTES: '2097152' } });
    assert.deepEqual(r.warnings, ['default backpressure.journal_low_water_bytes=50331648: above journal_high_water_bytes (2097152); clamped down to 2097152']);
  });
  it('seed 002: no clamp when high-water is 0 (disabled)', () => {
    const r = resolveWith({ env: { AFS_AETHER_CACHE_DIRTY_HIGH_WATER_BYTES: '0', AFS_AETHER_CACHE_DIRTY_LOW_WATER_BYTES: '5000' } });
    assert.equal(r.config.backpressure.cache_dirty_low_water_bytes, 5000);
    assert.deepEqual(r.warnings, []);
  });
  it('seed 002: 48MiB is refused', () => {
    assert.equal(problemsOf({ env: { AFS_AETHER_CACHE_DIRTY_LOW_WATER_BYTES: '48MiB' } }).length, 1);
  });
  it('journal low-water bytes and entries are clamped like the cache', () => {
    const r = resolveWith({ toml: '[backpressure]\njournal_high_water_bytes = 100\njournal_low_water_bytes = 200\njournal_high_water_entries = 10\njournal_low_water_entries = 20\n' });
    assert.equal(r.config.backpressure.journal_low_water_bytes, 100);
    assert.equal(r.config.backpressure.journal_low_water_entries, 10);
    assert.equal(r.warnings.length, 2);
    assert.match(r.warnings[0] ?? '', /^aether\.toml:backpressure\.journal_low_water_bytes=200: above journal_high_water_bytes \(100\); clamped down to 100$/);
  });
  it('cache resume-free below min-free is raised with a warning', () => {
    const r = resolveWith({ env: { AFS_AETHER_CACHE_MIN_FREE_BYTES: '1000', AFS_AETHER_CACHE_RESUME_FREE_BYTES: '10' } });
    assert.equal(r.config.backpressure.cache_resume_free_bytes, 1000);
    assert.equal(r.warnings.length, 1);
  });
  it('seed 003: start_ms must be > 0', () => {
    assert.deepEqual(problemsOf({ env: { AFS_AETHER_RECONNECT_START_MS: '0' } }), ['AFS_AETHER_RECONNECT_START_MS=0: must be greater than 0']);
  });
  it('seed 003: start_ms must be <= max_ms; equal is fine', () => {
    assert.deepEqual(problemsOf({ toml: '[bridge.reconnect_backoff]\nstart_ms = 5000\nmax_ms = 4000\n' }), [
      'aether.toml:bridge.reconnect_backoff.start_ms=5000: must be less than or equal to max_ms (4000, from aether.toml:bridge.reconnect_backoff.max_ms)',
    ]);
    assert.equal(resolveWith({ env: { AFS_AETHER_RECONNECT_START_MS: '30000' } }).config.bridge.reconnect_backoff.start_ms, 30000);
  });
  it('seed 003: start_ms takes decimal digits only', () => {
    assert.equal(problemsOf({ env: { AFS_AETHER_RECONNECT_START_MS: '1s' } }).length, 1);
  });
  it('seed 004: jitter must be numeric and non-negative at parse time', () => {
    assert.match(problemsOf({ env: { AFS_AETHER_RECONNECT_JITTER_PERCENT: '-5' } })[0] ?? '', /^AFS_AETHER_RECONNECT_JITTER_PERCENT="-5": must be numeric and non-negative/);
    assert.match(problemsOf({ env: { AFS_AETHER_RECONNECT_JITTER_PERCENT: 'lots' } })[0] ?? '', /must be numeric/);
  });
  it('seed 004: jitter 0..100 inclusive at validation', () => {
    assert.equal(resolveWith({ env: { AFS_AETHER_RECONNECT_JITTER_PERCENT: '0' } }).config.bridge.reconnect_backoff.jitter_percent, 0);
    assert.equal(resolveWith({ env: { AFS_AETHER_RECONNECT_JITTER_PERCENT: '100' } }).config.bridge.reconnect_backoff.jitter_percent, 100);
    assert.deepEqual(problemsOf({ env: { AFS_AETHER_RECONNECT_JITTER_PERCENT: '100.5' } }), ['AFS_AETHER_RECONNECT_JITTER_PERCENT=100.5: must be at least 0 and at most 100']);
  });
  it('seed 004: jitter_factor = jitter_percent / 100', () => {
    assert.equal(jitterFactor(resolveWith().config.bridge.reconnect_backoff), 0.2);
    assert.equal(jitterFactor(resolveWith({ env: { AFS_AETHER_RECONNECT_JITTER_PERCENT: '12.5' } }).config.bridge.reconnect_backoff), 0.125);
  });
  it('multiplier must be >= 1.0', () => {
    assert.equal(problemsOf({ env: { AFS_AETHER_RECONNECT_MULTIPLIER: '0.5' } }).length, 1);
    assert.equal(resolveWith({ env: { AFS_AETHER_RECONNECT_MULTIPLIER: '1' } }).config.bridge.reconnect_backoff.multiplier, 1);
  });
  it('sync interval must be > 0', () => {
    assert.deepEqual(problemsOf({ env: { AFS_AETHER_JOURNAL_SYNC_INTERVAL_MS: '0' } }), ['AFS_AETHER_JOURNAL_SYNC_INTERVAL_MS=0: must be greater than 0']);
  });
});

describe('errors: every problem, one line each, together', () => {
  it('reports all problems from every layer at once', () => {
    try {
      resolveWith({
        toml: 'journal_sync_policy = "always"\nbogus = 1\n',
        env: { AFS_AETHER_CACHE_MAX_BYTES: '1GB', AFS_AETHER_RECONNECT_JITTER_PERCENT: '-1' },
        overrides: { cache_dirty_max_bytes: -4 },
      });
      assert.fail('should have thrown');
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.problems.length, 5, err.message);
      for (const line of err.lines) assert.ok(!line.includes('\n'));
      assert.deepEqual(
        err.problems.map((p) => p.where),
        ['aether.toml:journal_sync_policy', 'aether.toml:bogus', 'AFS_AETHER_CACHE_MAX_BYTES', 'AFS_AETHER_RECONNECT_JITTER_PERCENT', 'ConfigOverrides.cache_dirty_max_bytes'],
      );
    }
  });
  it('unknown override fields are errors; unknown AFS_AETHER_ variables are warnings', () => {
    assert.match(problemsOf({ overrides: { nope: 1 } as never })[0] ?? '', /^ConfigOverrides\.nope=1: unknown override field/);
    assert.deepEqual(resolveWith({ env: { AFS_AETHER_TYPO: '1', AFS_AETHER_CONFIG: '' } }).warnings, ['AFS_AETHER_TYPO: unknown Aether variable, ignored']);
    // The hub's token is Aether's too, only not a mount setting.
    assert.deepEqual(resolveWith({ env: { AFS_AETHER_HUB_TOKEN: 'secret', AFS_AETHER_CONFIG: '' } }).warnings, []);
  });
  it('an empty environment value for a number is an error, not "unset"', () => {
    assert.equal(problemsOf({ env: { AFS_AETHER_CACHE_MAX_BYTES: '' } }).length, 1);
  });
});

describe('the configuration file', () => {
  it('--config FILE is used, and a missing named file is an error', () => {
    const cwd = tempDir();
    mkdirSync(join(cwd, 'etc'));
    writeFileSync(join(cwd, 'etc', 'a.toml'), 'journal_sync_interval_ms = 7\n');
    assert.equal(resolveConfig({ cwd, env: {}, configPath: 'etc/a.toml' }).journal_sync_interval_ms, 7);
    assert.throws(() => resolveConfig({ cwd, env: {}, configPath: 'etc/none.toml' }), (e: ConfigError) => e.lines[0] === '--config etc/none.toml: file not found');
  });
  it('AFS_AETHER_CONFIG names the file when --config is absent; --config wins', () => {
    const cwd = tempDir();
    writeFileSync(join(cwd, 'env.toml'), 'journal_sync_interval_ms = 8\n');
    writeFileSync(join(cwd, 'flag.toml'), 'journal_sync_interval_ms = 9\n');
    assert.equal(resolveConfig({ cwd, env: { AFS_AETHER_CONFIG: 'env.toml' } }).journal_sync_interval_ms, 8);
    assert.equal(resolveConfig({ cwd, env: { AFS_AETHER_CONFIG: 'env.toml' }, configPath: 'flag.toml' }).journal_sync_interval_ms, 9);
    assert.throws(() => resolveConfig({ cwd, env: { AFS_AETHER_CONFIG: 'gone.toml' } }), (e: ConfigError) => e.lines[0] === 'AFS_AETHER_CONFIG gone.toml: file not found');
  });
  it('./aether.toml is read when it exists and skipped when it does not', () => {
    assert.equal(resolveWith({ toml: 'journal_sync_interval_ms = 6\n' }).file, 'aether.toml');
    assert.equal(resolveWith().file, undefined);
  });
  it('a file that is not valid TOML is one clear error with line and column', () => {
    const lines = problemsOf({ toml: 'journal_sync_interval_ms = = 5\n' });
    assert.equal(lines.length, 1);
    assert.match(lines[0] ?? '', /^aether\.toml: not valid TOML: .*\(line 1, column \d+\)$/);
  });
  it('a directory named as the file is an error', () => {
    const cwd = tempDir();
    assert.throws(() => resolveConfigDetailed({ cwd, env: {}, configPath: '.' }), (e: ConfigError) => /cannot read file \(EISDIR\)/.test(e.lines[0] ?? ''));
  });
});
