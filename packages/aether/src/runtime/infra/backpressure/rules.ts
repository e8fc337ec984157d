import type { Thresholds } from './thresholds.js';

/*
 * The engage and clear rules, as pure functions over bit masks of active reasons, so the
 * coordinator's hot path allocates nothing and the rules can be tested as tables.
 *
 * Every clear check also requires that the matching trigger no longer fires. Without that, a
 * low-water clamped up to its high-water (seed 002) would clear and re-engage on the same input,
 * flapping at every evaluation; with it the state changes only when a threshold is crossed.
 */

export const JOURNAL_BYTES = 1;
export const JOURNAL_ENTRIES = 2;
export const JOURNAL_AGE = 4;
export const CACHE_DIRTY_BYTES = 1;
export const CACHE_DISK_FREE = 2;

export type JournalReason = 'bytes' | 'entries' | 'age';
export type CacheReason = 'dirty_bytes' | 'disk_free';

export const JOURNAL_REASONS: readonly (readonly [JournalReason, number])[] = [
  ['bytes', JOURNAL_BYTES],
  ['entries', JOURNAL_ENTRIES],
  ['age', JOURNAL_AGE],
];
export const CACHE_REASONS: readonly (readonly [CacheReason, number])[] = [
  ['dirty_bytes', CACHE_DIRTY_BYTES],
  ['disk_free', CACHE_DISK_FREE],
];

export interface JournalInputs {
  pendingBytes: number;
  pendingEntries: number;
  /** Age of the oldest pending entry; null when nothing is pending. */
  oldestAgeMs: number | null;
}

export interface CacheInputs {
  dirtyBytes: number;
  /** Free bytes of the cache's file system; null until first measured (never engages). */
  diskFreeBytes: number | null;
}

/** Which journal triggers fire. A high-water of 0 disables its trigger. */
export function journalFiring(t: Thresholds, i: JournalInputs): number {
  let m = 0;
  if (t.journal_high_water_bytes > 0 && i.pendingBytes >= t.journal_high_water_bytes) m |= JOURNAL_BYTES;
  if (t.journal_high_water_entries > 0 && i.pendingEntries >= t.journal_high_water_entries) m |= JOURNAL_ENTRIES;
  if (t.journal_max_age_seconds > 0 && i.oldestAgeMs !== null && i.oldestAgeMs >= t.journal_max_age_seconds * 1000) m |= JOURNAL_AGE;
  return m;
}

/**
 * True when every journal low-water check passes (seed 001: "clear remains gated by all
 * low-water checks"), also those whose trigger is disabled (high-water 0: it engages nothing,
 * and its low-water, never clamped to 0, still gates the clear). Low-water 0 is literal: that
 * check passes only once nothing is pending.
 */
export function journalClearable(t: Thresholds, i: JournalInputs): boolean {
  const hb = t.journal_high_water_bytes;
  const he = t.journal_high_water_entries;
  const maxAgeMs = t.journal_max_age_seconds * 1000;
  const bytesOk = i.pendingBytes <= t.journal_low_water_bytes && (hb === 0 || i.pendingBytes < hb);
  const entriesOk = i.pendingEntries <= t.journal_low_water_entries && (he === 0 || i.pendingEntries < he);
  const age = i.oldestAgeMs;
  const ageOk = maxAgeMs === 0 || age === null || (age <= t.journal_clear_age_seconds * 1000 && age < maxAgeMs);
  return bytesOk && entriesOk && ageOk;
}

/** Journal: any trigger engages (and adds its reason); all checks must pass to clear every reason at once. */
export function nextJournalMask(active: number, t: Thresholds, i: JournalInputs): number {
  const firing = journalFiring(t, i);
  if (active === 0) return firing;
  if ((firing & ~active) !== 0) return active | firing;
  return journalClearable(t, i) ? 0 : active;
}

/** Cache: each reason engages and clears by its own rule. */
export function nextCacheMask(active: number, t: Thresholds, i: CacheInputs): number {
  let next = active;
  const high = t.cache_dirty_high_water_bytes;
  const dirty = i.dirtyBytes;
  if ((active & CACHE_DIRTY_BYTES) === 0) {
    if (high > 0 && dirty >= high) next |= CACHE_DIRTY_BYTES;
  } else {
    // Low-water 0 (seed 002): clears as soon as dirty bytes drop below the high-water re-trigger.
    const low = t.cache_dirty_low_water_bytes;
    if (high === 0 || (dirty < high && (low === 0 || dirty <= low))) next &= ~CACHE_DIRTY_BYTES;
  }
  const free = i.diskFreeBytes;
  const min = t.cache_min_free_bytes;
  if ((active & CACHE_DISK_FREE) === 0) {
    if (min > 0 && free !== null && free < min) next |= CACHE_DISK_FREE;
  } else if (min === 0 || (free !== null && free >= t.cache_resume_free_bytes && free >= min)) {
    next &= ~CACHE_DISK_FREE;
  }
  return next;
}

export function reasonsOf<R extends string>(mask: number, table: readonly (readonly [R, number])[]): R[] {
  const out: R[] = [];
  for (const [name, bit] of table) if ((mask & bit) !== 0) out.push(name);
  return out;
}
