/**
 * Value parsers for each setting type, one per input surface: environment strings, TOML values
 * and programmatic overrides. They check the shape of a value; range rules run afterwards.
 */
export type TypeSpec =
  | { kind: 'u64'; unit: 'bytes' | 'ms' | 'seconds' | 'entries' }
  | { kind: 'f64'; unit: 'percent' | 'factor' }
  | { kind: 'enum'; values: readonly string[] }
  | { kind: 'string'; secret?: boolean }
  | { kind: 'path' }
  | { kind: 'listen' };

/**
 * A setting's value. A u64 above 2^53-1 stays a bigint until the config is built, so that
 * validation compares and messages print the value as written; the running config holds 2^53-1
 * (such values mean "practically never" for every setting: 8 PiB, or 285,000 years of ms).
 */
export type Value = number | string | bigint;

export type Parsed = { ok: true; value: Value } | { ok: false; rule: string; wrongType?: boolean };

export const U64_MAX = 18446744073709551615n;
const DECIMAL_DIGITS = /^[0-9]+$/;
// No sign: the reference pages refuse signs (a `-` one would be negative anyway).
const DECIMAL_NUMBER = /^(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$/;

export function typeName(t: TypeSpec): string {
  switch (t.kind) {
    case 'u64':
      return `integer ${t.unit} (u64)`;
    case 'f64':
      return t.unit === 'percent' ? 'floating-point percentage (f64)' : 'floating-point factor (f64)';
    case 'enum':
      return `one of ${t.values.map((v) => `\`${v}\``).join(', ')}`;
    case 'string':
      return t.secret ? 'string (secret)' : 'string';
    case 'path':
      return 'filesystem path';
    case 'listen':
      return '`host:port` or `off`';
  }
}

export function u64Rule(t: TypeSpec & { kind: 'u64' }): string {
  return `must be an unsigned integer of decimal digits only (u64 ${t.unit}, at most 18446744073709551615; no sign, unit suffix, spaces, hex or exponent)`;
}

function u64FromBigInt(t: TypeSpec & { kind: 'u64' }, n: bigint): Parsed {
  if (n < 0n || n > U64_MAX) return { ok: false, rule: u64Rule(t) };
  return { ok: true, value: n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n };
}

const F64_RULE = 'must be numeric and non-negative (a finite decimal number, f64)';

function checkF64(n: number): Parsed {
  if (!Number.isFinite(n) || n < 0 || Object.is(n, -0)) return { ok: false, rule: F64_RULE };
  return { ok: true, value: n };
}

function parseListen(s: string): Parsed {
  const rule = 'must be `host:port` (port 0..65535, 0 picks a free port) or `off`';
  if (s === 'off') return { ok: true, value: s };
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})$/.exec(s);
  if (!m || Number(m[2]) > 65535) return { ok: false, rule };
  return { ok: true, value: s };
}

function parseText(t: TypeSpec, s: string): Parsed {
  switch (t.kind) {
    case 'enum':
      return t.values.includes(s) ? { ok: true, value: s } : { ok: false, rule: `must be ${typeName(t)}` };
    case 'path':
      if (s.includes('\0')) return { ok: false, rule: 'must be a path without NUL bytes' };
      return s === '' ? { ok: false, rule: 'must be a non-empty path' } : { ok: true, value: s };
    case 'listen':
      return parseListen(s);
    default:
      return { ok: true, value: s };
  }
}

/** Parses a value given as an environment variable string. */
export function parseEnv(t: TypeSpec, raw: string): Parsed {
  switch (t.kind) {
    case 'u64':
      return DECIMAL_DIGITS.test(raw) ? u64FromBigInt(t, BigInt(raw)) : { ok: false, rule: u64Rule(t) };
    case 'f64':
      return DECIMAL_NUMBER.test(raw) ? checkF64(Number(raw)) : { ok: false, rule: F64_RULE };
    default:
      return parseText(t, raw);
  }
}

/**
 * Parses a TOML value. `rawText` is the value as written in the file, so that TOML's own hex,
 * octal, binary and `1_000` spellings can be refused for u64 settings ("decimal digits only").
 */
export function parseToml(t: TypeSpec, v: unknown, rawText: string | undefined): Parsed {
  switch (t.kind) {
    case 'u64':
      if (typeof v !== 'bigint') return { ok: false, rule: `must be a TOML integer (${u64Rule(t).slice(8)})`, wrongType: true };
      if (rawText !== undefined && !DECIMAL_DIGITS.test(rawText)) return { ok: false, rule: u64Rule(t) };
      return u64FromBigInt(t, v);
    case 'f64':
      // A TOML integer is accepted for a float setting: `jitter_percent = 20` means 20.0.
      if (typeof v === 'bigint') return checkF64(Number(v));
      if (typeof v !== 'number') return { ok: false, rule: `must be a TOML number (${F64_RULE.slice(8)})`, wrongType: true };
      return checkF64(v);
    default:
      if (typeof v !== 'string') return { ok: false, rule: `must be a TOML string (${typeName(t)})`, wrongType: true };
      return parseText(t, v);
  }
}

/** Parses a programmatic override (a JavaScript value). */
export function parseOverride(t: TypeSpec, v: unknown): Parsed {
  switch (t.kind) {
    case 'u64':
      if (typeof v === 'bigint') return u64FromBigInt(t, v);
      if (typeof v === 'number' && Number.isInteger(v) && v >= 0) return { ok: true, value: v };
      return { ok: false, rule: u64Rule(t) };
    case 'f64':
      return typeof v === 'number' ? checkF64(v) : { ok: false, rule: F64_RULE };
    default:
      return typeof v === 'string' ? parseText(t, v) : { ok: false, rule: `must be a string (${typeName(t)})` };
  }
}

/** Renders a value for messages: strings quoted, numbers plain. */
export function showValue(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number') return String(v);
  if (v instanceof Date) return v.toISOString();
  if (v === null || v === undefined) return String(v);
  return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x));
}
