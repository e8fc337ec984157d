import { ConfigError, type ConfigProblem, type ValueSource } from './errors.js';
import type { AetherConfig, ConfigOverrides } from './model.js';
import { CROSS_RULES, inRange, rangeRule, type Values } from './rules.js';
import { CONFIG_PATH_ENV, SETTINGS, settingName, type Setting } from './schema/index.js';
import { locateConfigFile, readTomlFile, type TomlFile } from './toml-file.js';
import { parseEnv, parseOverride, parseToml, showValue, type Parsed, type Value } from './values.js';

export interface ResolveInput {
  /** `--config FILE`; when absent, `AFS_AETHER_CONFIG`, then `./aether.toml` if it exists. */
  configPath?: string;
  env?: Record<string, string | undefined>;
  overrides?: ConfigOverrides;
  /** Directory that relative paths are taken from; defaults to `process.cwd()`. */
  cwd?: string;
}

export interface ResolvedConfig {
  config: Readonly<AetherConfig>;
  /** Where each setting's value came from, by setting name. */
  sources: ReadonlyMap<string, ValueSource>;
  /** Clamps and ignored variables, one line each. */
  warnings: readonly string[];
  /** The configuration file read, if any. */
  file: string | undefined;
  /** The exact decimal text of u64 values above 2^53-1 (`config` holds the nearest double). */
  exact: ReadonlyMap<string, string>;
}

const TABLES = new Set(SETTINGS.flatMap((s) => s.path.slice(0, -1).map((_, i) => s.path.slice(0, i + 1).join('.'))));
const BY_NAME = new Map(SETTINGS.map((s) => [settingName(s), s]));

class Resolution {
  readonly values: Values = new Map();
  readonly sources = new Map<string, ValueSource>();
  readonly problems: ConfigProblem[] = [];
  readonly warnings: string[] = [];
  readonly broken = new Set<string>();

  constructor() {
    for (const s of SETTINGS) this.set(s, s.default, { layer: 'default', where: 'default' });
  }

  set(s: Setting, value: Value, source: ValueSource): void {
    this.values.set(settingName(s), value);
    this.sources.set(settingName(s), source);
  }

  take(s: Setting, parsed: Parsed, source: ValueSource, shown: string, wrongTypeCode = false): void {
    if (parsed.ok) {
      this.set(s, parsed.value, source);
      this.broken.delete(settingName(s));
      return;
    }
    this.broken.add(settingName(s));
    this.problems.push({ code: parsed.wrongType && wrongTypeCode ? 'WRONG_TOML_TYPE' : 'INVALID_VALUE', where: source.where, value: shown, rule: parsed.rule });
  }

  isBroken(name: string): boolean {
    return this.broken.has(name);
  }

  where(name: string): string {
    return this.sources.get(name)?.where ?? name;
  }
}

function applyFile(r: Resolution, file: TomlFile): void {
  const walk = (table: Record<string, unknown>, prefix: string): void => {
    for (const [key, value] of Object.entries(table)) {
      const name = prefix ? `${prefix}.${key}` : key;
      const where = `${file.path}:${name}`;
      const setting = BY_NAME.get(name);
      if (setting) {
        const raw = file.raw.get(name);
        // A number is shown as written (0x200000, 1500.0), not as the parser read it.
        r.take(setting, parseToml(setting.type, value, raw), { layer: 'file', where }, (typeof value === 'bigint' || typeof value === 'number') && raw !== undefined ? raw : showValue(value), true);
      } else if (TABLES.has(name)) {
        if (typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date)) walk(value as Record<string, unknown>, name);
        else r.problems.push({ code: 'WRONG_TOML_TYPE', where, value: showValue(value), rule: `must be a TOML table [${name}]` });
      } else {
        r.problems.push({ code: 'UNKNOWN_KEY', where, value: '', rule: 'unknown setting (see `aether config explain` and docs/config/)' });
      }
    }
  };
  walk(file.doc, '');
}

/** Aether's variables that are not settings: the hub's token, read by `aether hub` (a shell that runs a hub and a mount has it set). */
const OTHER_VARIABLES = ['AFS_AETHER_HUB_TOKEN'];

function applyEnv(r: Resolution, env: Record<string, string | undefined>): void {
  const known = new Set<string>([CONFIG_PATH_ENV, ...OTHER_VARIABLES]);
  for (const s of SETTINGS) {
    known.add(s.env);
    const raw = env[s.env];
    if (raw !== undefined) r.take(s, parseEnv(s.type, raw), { layer: 'env', where: s.env }, JSON.stringify(raw));
  }
  for (const name of Object.keys(env)) {
    if (name.startsWith('AFS_AETHER_') && !known.has(name)) r.warnings.push(`${name}: unknown Aether variable, ignored`);
  }
}

function applyOverrides(r: Resolution, overrides: ConfigOverrides): void {
  for (const [field, value] of Object.entries(overrides)) {
    if (value === undefined) continue;
    const where = `ConfigOverrides.${field}`;
    const s = SETTINGS.find((x) => x.override === field);
    if (!s) {
      r.problems.push({ code: 'UNKNOWN_KEY', where, value: showValue(value), rule: 'unknown override field' });
      continue;
    }
    r.take(s, parseOverride(s.type, value), { layer: 'override', where }, showValue(value));
  }
}

function validate(r: Resolution): void {
  for (const s of SETTINGS) {
    const name = settingName(s);
    const v = r.values.get(name);
    if (s.range && (typeof v === 'number' || typeof v === 'bigint') && !r.isBroken(name) && !inRange(Number(v), s.range)) {
      r.problems.push({ code: 'INVALID_VALUE', where: r.where(name), value: String(v), rule: rangeRule(s.range) });
      r.broken.add(name);
    }
  }
  // A default breaking a rule with a set value is named by its key: "default=30" named nothing.
  const subject = (n: string): string => (r.sources.get(n)?.layer === 'default' ? `default ${n}` : r.where(n));
  for (const rule of CROSS_RULES) {
    if (rule.settings.some((n) => r.isBroken(n))) continue;
    rule.apply({
      values: r.values,
      where: (n) => r.where(n),
      subject,
      problem: (n, text) => r.problems.push({ code: 'CROSS_FIELD', where: subject(n), value: String(r.values.get(n)), rule: text }),
      warn: (line) => r.warnings.push(line),
    });
  }
}

function deepFreeze<T>(o: T): T {
  if (typeof o === 'object' && o !== null) {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

/** Builds the `aether.toml`-shaped object from values keyed by setting name. */
export function buildConfig(values: ReadonlyMap<string, Value>): Readonly<AetherConfig> {
  const root: Record<string, unknown> = {};
  for (const s of SETTINGS) {
    let table = root;
    for (const part of s.path.slice(0, -1)) table = (table[part] ??= {}) as Record<string, unknown>;
    const v = values.get(settingName(s));
    // Above 2^53-1 the running value is 2^53-1 ("practically never", and every consumer's integer checks hold).
    table[s.path[s.path.length - 1] as string] = typeof v === 'bigint' ? Number.MAX_SAFE_INTEGER : v;
  }
  return deepFreeze(root as unknown as AetherConfig);
}

/** Resolves every layer and reports where each value came from; throws `ConfigError` listing every problem. */
export function resolveConfigDetailed(input: ResolveInput = {}): ResolvedConfig {
  const env = input.env ?? process.env;
  const cwd = input.cwd ?? process.cwd();
  const r = new Resolution();
  const located = locateConfigFile(input.configPath, env, cwd);
  if (located) applyFile(r, readTomlFile(located.path, located.named, cwd));
  applyEnv(r, env);
  applyOverrides(r, input.overrides ?? {});
  validate(r);
  if (r.problems.length > 0) throw new ConfigError(r.problems);
  return { config: buildConfig(r.values), sources: r.sources, warnings: r.warnings, file: located?.path, exact: exactValues(r.values) };
}

/** The decimal text of every bigint value (a u64 above 2^53-1). */
export function exactValues(values: ReadonlyMap<string, Value>): Map<string, string> {
  const exact = new Map<string, string>();
  for (const [name, v] of values) if (typeof v === 'bigint') exact.set(name, v.toString());
  return exact;
}

/** Resolves defaults < `aether.toml` < environment < overrides into a frozen config, or throws `ConfigError`. */
export function resolveConfig(input: ResolveInput = {}): Readonly<AetherConfig> {
  return resolveConfigDetailed(input).config;
}
