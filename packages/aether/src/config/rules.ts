/**
 * Cross-field rules: checks that need more than one resolved value. Each rule names the settings
 * it concerns and documents itself, so the reference pages list it under every one of them.
 */
import type { Value } from './values.js';

export type Values = Map<string, Value>;

export interface RuleContext {
  values: Values;
  /** How the user names the place a setting's value came from (`AFS_AETHER_X`, `file:key`, ...). */
  where(name: string): string;
  /** The same as the subject of a message: a default is named by its key (`default backpressure.x`). */
  subject(name: string): string;
  problem(name: string, rule: string): void;
  warn(line: string): void;
}

export interface CrossRule {
  settings: readonly string[];
  /** One sentence per concerned setting, keyed by setting name, for the reference pages. */
  doc: Readonly<Record<string, string>>;
  apply(ctx: RuleContext): void;
}

/** A u64 setting's value, exact (bigint) whatever its size. */
const u64 = (v: Values, name: string): bigint => BigInt(v.get(name) as number | bigint);

function clampLowToHigh(low: string, high: string): CrossRule {
  const lowKey = low.split('.').pop() ?? low;
  const highKey = high.split('.').pop() ?? high;
  return {
    settings: [low, high],
    doc: {
      [low]: `When \`${highKey}\` is > 0 and this value is above it, it is clamped down to \`${highKey}\` with a warning (not an error).`,
      [high]: `A \`${lowKey}\` above this value is clamped down to it with a warning.`,
    },
    apply(ctx) {
      const hi = u64(ctx.values, high);
      const lo = u64(ctx.values, low);
      if (hi > 0n && lo > hi) {
        ctx.values.set(low, ctx.values.get(high)!);
        ctx.warn(`${ctx.subject(low)}=${lo}: above ${highKey} (${hi}); clamped down to ${hi}`);
      }
    },
  };
}

export const CROSS_RULES: readonly CrossRule[] = [
  {
    settings: ['backpressure.journal_max_age_seconds', 'backpressure.journal_clear_age_seconds'],
    doc: {
      'backpressure.journal_max_age_seconds': 'Must be strictly greater than `AFS_AETHER_JOURNAL_CLEAR_AGE_SECS`; otherwise validation fails. The check runs on the resolved values, so a default counts as configured.',
      'backpressure.journal_clear_age_seconds': 'Must be strictly less than `AFS_AETHER_JOURNAL_MAX_AGE_SECS`; otherwise validation fails.',
    },
    apply(ctx) {
      const max = u64(ctx.values, 'backpressure.journal_max_age_seconds');
      const clear = u64(ctx.values, 'backpressure.journal_clear_age_seconds');
      if (max <= clear) {
        ctx.problem(
          'backpressure.journal_max_age_seconds',
          `must be strictly greater than journal_clear_age_seconds (${clear}, from ${ctx.where('backpressure.journal_clear_age_seconds')})`,
        );
      }
    },
  },
  clampLowToHigh('backpressure.journal_low_water_bytes', 'backpressure.journal_high_water_bytes'),
  clampLowToHigh('backpressure.journal_low_water_entries', 'backpressure.journal_high_water_entries'),
  clampLowToHigh('backpressure.cache_dirty_low_water_bytes', 'backpressure.cache_dirty_high_water_bytes'),
  {
    settings: ['backpressure.cache_resume_free_bytes', 'backpressure.cache_min_free_bytes'],
    doc: {
      'backpressure.cache_resume_free_bytes': 'When `cache_min_free_bytes` is > 0 and this value is below it, it is raised to `cache_min_free_bytes` with a warning (not an error).',
      'backpressure.cache_min_free_bytes': 'A `cache_resume_free_bytes` below this value is raised to it with a warning.',
    },
    apply(ctx) {
      const min = u64(ctx.values, 'backpressure.cache_min_free_bytes');
      const resume = u64(ctx.values, 'backpressure.cache_resume_free_bytes');
      if (min > 0n && resume < min) {
        ctx.values.set('backpressure.cache_resume_free_bytes', ctx.values.get('backpressure.cache_min_free_bytes')!);
        ctx.warn(`${ctx.subject('backpressure.cache_resume_free_bytes')}=${resume}: below cache_min_free_bytes (${min}); raised to ${min}`);
      }
    },
  },
  {
    settings: ['bridge.reconnect_backoff.start_ms', 'bridge.reconnect_backoff.max_ms'],
    doc: {
      'bridge.reconnect_backoff.start_ms': 'Must be less than or equal to `AFS_AETHER_RECONNECT_MAX_MS` (backoff validation enforces `max_ms >= start_ms`).',
      'bridge.reconnect_backoff.max_ms': 'Must be greater than or equal to `AFS_AETHER_RECONNECT_START_MS`.',
    },
    apply(ctx) {
      const start = u64(ctx.values, 'bridge.reconnect_backoff.start_ms');
      const max = u64(ctx.values, 'bridge.reconnect_backoff.max_ms');
      if (start > max) {
        ctx.problem('bridge.reconnect_backoff.start_ms', `must be less than or equal to max_ms (${max}, from ${ctx.where('bridge.reconnect_backoff.max_ms')})`);
      }
    },
  },
];

export function rulesFor(name: string): CrossRule[] {
  return CROSS_RULES.filter((r) => r.settings.includes(name));
}

/** The single-value range rule in words, as used in errors and in the reference pages. */
export function rangeRule(range: { min?: number; minExclusive?: number; max?: number }): string {
  const parts: string[] = [];
  if (range.minExclusive !== undefined) parts.push(`greater than ${range.minExclusive}`);
  if (range.min !== undefined) parts.push(`at least ${range.min}`);
  if (range.max !== undefined) parts.push(`at most ${range.max}`);
  return `must be ${parts.join(' and ')}`;
}

export function inRange(v: number, range: { min?: number; minExclusive?: number; max?: number }): boolean {
  if (range.minExclusive !== undefined && !(v > range.minExclusive)) return false;
  if (range.min !== undefined && v < range.min) return false;
  if (range.max !== undefined && v > range.max) return false;
  return true;
}
