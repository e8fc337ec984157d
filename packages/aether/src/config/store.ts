import type { ValueSource } from './errors.js';
import { ConfigError } from './errors.js';
import type { AetherConfig } from './model.js';
import { buildConfig, resolveConfigDetailed, type ResolveInput, type ResolvedConfig } from './resolve.js';
import { SETTINGS, settingName, tomlKey, type SectionName } from './schema/index.js';

export type SectionValues = Readonly<Record<string, number | string>>;

export interface SectionChange {
  section: SectionName;
  old: SectionValues;
  new: SectionValues;
}

export type ReloadResult =
  | { ok: true; changed: SectionName[]; restartRequired: string[]; warnings: readonly string[]; observerErrors: string[] }
  | { ok: false; problems: string[] };

type Observer = (change: SectionChange) => void;

const SECTIONS: readonly SectionName[] = ['journal', 'runtime', 'backpressure', 'cache', 'bridge', 'bridge.reconnect_backoff'];

function valueAt(config: AetherConfig, path: readonly string[]): number | string {
  let node: unknown = config;
  for (const p of path) node = (node as Record<string, unknown>)[p];
  return node as number | string;
}

/** The values of one observer section, keyed by TOML key. */
export function sectionValues(config: AetherConfig, section: SectionName): SectionValues {
  const out: Record<string, number | string> = {};
  for (const s of SETTINGS) if (s.section === section) out[tomlKey(s)] = valueAt(config, s.path);
  return Object.freeze(out);
}

/**
 * Holds the live configuration. `reload()` re-resolves every layer; observers hear only about
 * sections that changed. Settings that cannot change at runtime keep their running value and are
 * reported as needing a restart. A failed reload leaves everything as it was.
 */
export class ConfigStore {
  private resolved: ResolvedConfig;
  private readonly observers = new Map<SectionName, Set<Observer>>();

  constructor(private readonly input: ResolveInput) {
    this.resolved = resolveConfigDetailed(input);
  }

  get current(): Readonly<AetherConfig> {
    return this.resolved.config;
  }

  get sources(): ReadonlyMap<string, ValueSource> {
    return this.resolved.sources;
  }

  get warnings(): readonly string[] {
    return this.resolved.warnings;
  }

  get file(): string | undefined {
    return this.resolved.file;
  }

  /** Calls `fn` with old and new values whenever `section` changes on reload; returns an unsubscribe. */
  observe(section: SectionName, fn: Observer): () => void {
    let set = this.observers.get(section);
    if (!set) this.observers.set(section, (set = new Set()));
    set.add(fn);
    return () => set.delete(fn);
  }

  reload(): ReloadResult {
    let next: ResolvedConfig;
    try {
      next = resolveConfigDetailed(this.input);
    } catch (err) {
      if (err instanceof ConfigError) return { ok: false, problems: err.lines };
      throw err;
    }
    const old = this.resolved;
    const values = new Map<string, number | string>();
    const exact = new Map<string, string>();
    const sources = new Map(next.sources);
    const restartRequired: string[] = [];
    for (const s of SETTINGS) {
      const name = settingName(s);
      const before = valueAt(old.config, s.path);
      const after = valueAt(next.config, s.path);
      if (!s.reloadable && before !== after) {
        restartRequired.push(s.env);
        values.set(name, before);
        sources.set(name, old.sources.get(name) ?? { layer: 'default', where: 'default' });
        const e = old.exact.get(name);
        if (e !== undefined) exact.set(name, e);
      } else {
        values.set(name, after);
        const e = next.exact.get(name);
        if (e !== undefined) exact.set(name, e);
      }
    }
    const config = buildConfig(values);
    this.resolved = { config, sources, warnings: next.warnings, file: next.file, exact };
    const changed = SECTIONS.filter((sec) => JSON.stringify(sectionValues(old.config, sec)) !== JSON.stringify(sectionValues(config, sec)));
    const observerErrors: string[] = [];
    for (const section of changed) {
      const change: SectionChange = { section, old: sectionValues(old.config, section), new: sectionValues(config, section) };
      for (const fn of this.observers.get(section) ?? []) {
        try {
          fn(change);
        } catch (err) {
          observerErrors.push(`observer of [${section}] failed: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
    }
    return { ok: true, changed, restartRequired, warnings: next.warnings, observerErrors };
  }
}
