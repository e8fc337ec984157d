import type { ConfigOverrides } from '../model.js';
import type { TypeSpec } from '../values.js';

/** The section an observer subscribes to; matches the TOML tables (`journal` and `runtime` are top-level keys). */
export type SectionName = 'journal' | 'runtime' | 'backpressure' | 'cache' | 'bridge' | 'bridge.reconnect_backoff';

export interface SettingDoc {
  /** Paragraphs for "What It Does". */
  whatItDoes: string[];
  /** Lines for "Runtime Behavior". */
  runtime: string[];
  /** Value rules beyond the ones generated from the type, the range check and cross-field rules. */
  valueNotes: string[];
  interactions: string[];
  observability: string[];
  example: { env: Record<string, string>; toml?: string; explanation: string };
}

/** One row of the schema: everything Aether knows about a setting. */
export interface Setting {
  /** TOML path: table names, then the key. */
  path: readonly string[];
  env: string;
  /** Field of `ConfigOverrides`; absent where the DESIGN table has none. */
  override?: keyof ConfigOverrides;
  /** The `aether mount` flag that sets the same value as an override, where there is one. */
  cliFlag?: string;
  type: TypeSpec;
  default: number | string;
  /** Human reading of the default, e.g. "2 MiB". */
  defaultNote?: string;
  section: SectionName;
  reloadable: boolean;
  /** Single-value range rule checked at validation. */
  range?: { min?: number; minExclusive?: number; max?: number };
  doc: SettingDoc;
  sources: string[];
}

export function settingName(s: Setting): string {
  return s.path.join('.');
}

export function tomlKey(s: Setting): string {
  return s.path[s.path.length - 1] ?? '';
}

export function tomlTable(s: Setting): string {
  return s.path.slice(0, -1).join('.');
}
