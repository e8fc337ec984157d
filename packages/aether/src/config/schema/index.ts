import { backpressureSettings } from './backpressure.js';
import { bridgeSettings } from './bridge.js';
import { cacheSettings } from './cache.js';
import { journalSettings } from './journal.js';
import { runtimeSettings } from './runtime.js';
import { settingName, tomlKey, type Setting } from './types.js';

export * from './types.js';

/** The schema: every setting of Aether, in `aether.toml` order. */
export const SETTINGS: readonly Setting[] = Object.freeze([
  ...journalSettings,
  ...runtimeSettings,
  ...backpressureSettings,
  ...cacheSettings,
  ...bridgeSettings,
]);

/** Environment variables that are not settings but are read by Aether. */
export const CONFIG_PATH_ENV = 'AFS_AETHER_CONFIG';

export function byName(name: string): Setting | undefined {
  return SETTINGS.find((s) => settingName(s) === name);
}

/**
 * Finds a setting by its env var, full TOML key (`backpressure.journal_max_age_seconds`),
 * bare TOML key when unique (`journal_max_age_seconds`), or override field.
 */
export function findSetting(query: string): Setting | undefined {
  const exact = SETTINGS.find((s) => s.env === query || settingName(s) === query || s.override === query);
  if (exact) return exact;
  const bare = SETTINGS.filter((s) => tomlKey(s) === query);
  return bare.length === 1 ? bare[0] : undefined;
}
