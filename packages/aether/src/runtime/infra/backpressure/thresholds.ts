import type { BackpressureConfig } from '../../../config/model.js';
import type { SectionValues } from '../../../config/store.js';

/** The `[backpressure]` values as the coordinator applies them; same keys as `aether.toml`. */
export type Thresholds = Readonly<BackpressureConfig>;

const KEYS: readonly (keyof BackpressureConfig)[] = [
  'journal_high_water_bytes',
  'journal_low_water_bytes',
  'journal_high_water_entries',
  'journal_low_water_entries',
  'journal_max_age_seconds',
  'journal_clear_age_seconds',
  'cache_dirty_high_water_bytes',
  'cache_dirty_low_water_bytes',
  'cache_min_free_bytes',
  'cache_resume_free_bytes',
];

function clampLow(low: number, high: number): number {
  return high > 0 && low > high ? high : low;
}

/**
 * Applies seed 002's normalisation: a low-water above its (enabled) high-water is clamped down to
 * it, and the resume level is raised to at least the minimum free space. Resolution already does
 * this for configured values; doing it again here keeps the coordinator correct for thresholds
 * handed to it directly (tests, embedders).
 */
export function normalizeThresholds(t: BackpressureConfig): Thresholds {
  return Object.freeze({
    ...t,
    journal_low_water_bytes: clampLow(t.journal_low_water_bytes, t.journal_high_water_bytes),
    journal_low_water_entries: clampLow(t.journal_low_water_entries, t.journal_high_water_entries),
    cache_dirty_low_water_bytes: clampLow(t.cache_dirty_low_water_bytes, t.cache_dirty_high_water_bytes),
    cache_resume_free_bytes: t.cache_min_free_bytes > 0 ? Math.max(t.cache_resume_free_bytes, t.cache_min_free_bytes) : t.cache_resume_free_bytes,
  });
}

/** Reads the thresholds out of a `ConfigStore` section change; every key must be a number. */
export function thresholdsFromSection(values: SectionValues): Thresholds {
  const out = {} as Record<keyof BackpressureConfig, number>;
  for (const key of KEYS) {
    const v = values[key];
    if (typeof v !== 'number') throw new TypeError(`[backpressure] ${key} is missing from the reloaded section`);
    out[key] = v;
  }
  return normalizeThresholds(out);
}
