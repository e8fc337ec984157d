import type { ValueSource } from './errors.js';
import type { AetherConfig } from './model.js';
import type { ResolvedConfig } from './resolve.js';
import { SETTINGS, settingName, tomlKey, tomlTable, type Setting } from './schema/index.js';

/** Secrets are never printed in full: only whether they are set and their length. */
export function redact(s: Setting, value: number | string): number | string {
  if (s.type.kind === 'string' && s.type.secret && typeof value === 'string' && value !== '') return `<redacted: ${value.length} chars>`;
  return value;
}

function tomlValue(s: Setting, v: number | string): string {
  if (typeof v === 'string') return JSON.stringify(v);
  return s.type.kind === 'f64' && Number.isInteger(v) ? v.toFixed(1) : String(v);
}

function describeSource(src: ValueSource | undefined): string {
  if (!src || src.layer === 'default') return 'default';
  return `${src.layer} ${src.where}`;
}

function valueOf(config: AetherConfig, s: Setting): number | string {
  let node: unknown = config;
  for (const p of s.path) node = (node as Record<string, unknown>)[p];
  return node as number | string;
}

/** `aether config show`: the resolved values in TOML layout, each with the layer it came from. */
export function renderShowText(r: ResolvedConfig): string {
  const lines: string[] = [`# resolved configuration (file: ${r.file ?? 'none'}); order: defaults < aether.toml < environment < overrides`];
  let table = '';
  const rows = SETTINGS.map((s) => ({ s, text: `${tomlKey(s)} = ${r.exact.get(settingName(s)) ?? tomlValue(s, redact(s, valueOf(r.config, s)))}` }));
  const width = Math.max(...rows.map((x) => x.text.length)) + 2;
  for (const { s, text } of rows) {
    if (tomlTable(s) !== table) {
      table = tomlTable(s);
      lines.push('', `[${table}]`);
    }
    lines.push(`${text.padEnd(width)}# ${describeSource(r.sources.get(settingName(s)))}`);
  }
  return lines.join('\n') + '\n';
}

/**
 * `aether config show --json`: the resolved values alone, shaped exactly like `aether.toml`.
 * Values in `exact` (u64 above 2^53-1) are written as their exact digits, which JSON allows.
 */
export function renderShowJson(config: AetherConfig, exact: ReadonlyMap<string, string> = new Map()): string {
  const copy = JSON.parse(JSON.stringify(config)) as Record<string, unknown>;
  const marks = new Map<string, string>();
  for (const s of SETTINGS) {
    let node = copy;
    for (const p of s.path.slice(0, -1)) node = node[p] as Record<string, unknown>;
    const key = tomlKey(s);
    const digits = exact.get(settingName(s));
    if (digits === undefined) node[key] = redact(s, node[key] as number | string);
    else marks.set(JSON.stringify((node[key] = `\u0000exact:${settingName(s)}`)), digits);
  }
  let text = JSON.stringify(copy, null, 2);
  for (const [mark, digits] of marks) text = text.replace(mark, digits);
  return text + '\n';
}
