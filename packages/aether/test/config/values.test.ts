import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseEnv, parseOverride, parseToml } from '../../src/config/values.js';

const u64 = { kind: 'u64', unit: 'bytes' } as const;
const f64 = { kind: 'f64', unit: 'percent' } as const;

describe('u64 values: decimal digits only', () => {
  for (const good of ['0', '1', '2097152', '9007199254740991', '18446744073709551615', '007']) {
    it(`env accepts ${JSON.stringify(good)}`, () => {
      const r = parseEnv(u64, good);
      assert.ok(r.ok, r.ok ? '' : r.rule);
      // Above 2^53-1 the value stays exact (a bigint) until the config is built.
      const n = BigInt(good);
      assert.equal(r.value, n > BigInt(Number.MAX_SAFE_INTEGER) ? n : Number(n));
    });
  }
  for (const bad of ['2MiB', '2M', '1k', '-1', '+1', ' 1', '1 ', '1 000', '0x10', '0o7', '0b1', '1e3', '1.0', '1_000', '', 'abc', '18446744073709551616', '99999999999999999999999']) {
    it(`env refuses ${JSON.stringify(bad)}`, () => {
      const r = parseEnv(u64, bad);
      assert.equal(r.ok, false);
      assert.match((r as { rule: string }).rule, /decimal digits only \(u64 bytes/);
    });
  }
  it('TOML integer written in decimal is accepted', () => {
    assert.deepEqual(parseToml(u64, 42n, '42'), { ok: true, value: 42 });
  });
  it('TOML hex, octal, binary and underscore spellings are refused', () => {
    for (const raw of ['0x10', '0o20', '0b10000', '1_6']) assert.equal(parseToml(u64, 16n, raw).ok, false, raw);
  });
  it('TOML negative integer and integer above 2^64-1 are refused', () => {
    assert.equal(parseToml(u64, -3n, '-3').ok, false);
    assert.equal(parseToml(u64, 18446744073709551616n, '18446744073709551616').ok, false);
    assert.equal(parseToml(u64, 18446744073709551615n, '18446744073709551615').ok, true);
  });
  it('TOML float, string and boolean are the wrong TOML type', () => {
    for (const v of [1.5, '5', true]) {
      const r = parseToml(u64, v, undefined);
      assert.equal(r.ok, false);
      assert.equal((r as { wrongType?: boolean }).wrongType, true);
      assert.match((r as { rule: string }).rule, /must be a TOML integer/);
    }
  });
  it('overrides take non-negative integers only', () => {
    assert.equal(parseOverride(u64, 5).ok, true);
    assert.equal(parseOverride(u64, 5n).ok, true);
    for (const v of [-1, 1.5, '5', NaN]) assert.equal(parseOverride(u64, v).ok, false, String(v));
  });
});

describe('f64 values: numeric and non-negative at parse time', () => {
  for (const [good, value] of [['20', 20], ['12.5', 12.5], ['0', 0], ['100', 100], ['150', 150], ['1e1', 10]] as const) {
    it(`env accepts ${good}`, () => assert.deepEqual(parseEnv(f64, good), { ok: true, value }));
  }
  for (const bad of ['-1', '-0.5', 'abc', '', 'NaN', 'inf', 'Infinity', '20%', '0x10', ' 20', '+12.5', '+0']) {
    it(`env refuses ${JSON.stringify(bad)}`, () => {
      const r = parseEnv(f64, bad);
      assert.equal(r.ok, false);
      assert.match((r as { rule: string }).rule, /must be numeric and non-negative/);
    });
  }
  it('TOML float and integer are accepted; string is the wrong type; negative and inf refused', () => {
    assert.deepEqual(parseToml(f64, 12.5, '12.5'), { ok: true, value: 12.5 });
    assert.deepEqual(parseToml(f64, 20n, '20'), { ok: true, value: 20 });
    assert.equal((parseToml(f64, '20', '"20"') as { wrongType?: boolean }).wrongType, true);
    assert.equal(parseToml(f64, -1, '-1.0').ok, false);
    assert.equal(parseToml(f64, Infinity, 'inf').ok, false);
    assert.equal(parseToml(f64, NaN, 'nan').ok, false);
  });
});

describe('enum, listen and path values', () => {
  const policy = { kind: 'enum', values: ['interval', 'manual', 'immediate'] } as const;
  it('sync policy is exact and case-sensitive', () => {
    assert.equal(parseEnv(policy, 'manual').ok, true);
    for (const bad of ['Manual', 'always', '', ' interval']) assert.equal(parseEnv(policy, bad).ok, false, bad);
  });
  it('metrics listen is host:port or off', () => {
    const listen = { kind: 'listen' } as const;
    for (const good of ['127.0.0.1:9464', 'localhost:0', '[::1]:9464', 'off', '0.0.0.0:65535']) assert.equal(parseEnv(listen, good).ok, true, good);
    for (const bad of ['9464', '127.0.0.1', '127.0.0.1:65536', 'host:-1', 'on', '']) assert.equal(parseEnv(listen, bad).ok, false, bad);
  });
  it('path is non-empty without NUL', () => {
    const path = { kind: 'path' } as const;
    assert.equal(parseEnv(path, '/var/lib/aether').ok, true);
    assert.equal(parseEnv(path, '').ok, false);
    assert.equal(parseEnv(path, 'a\0b').ok, false);
  });
});
