/** The resolved configuration, shaped exactly like `aether.toml`. */
export type SyncPolicy = 'interval' | 'manual' | 'immediate';

export interface BackpressureConfig {
  journal_high_water_bytes: number;
  journal_low_water_bytes: number;
  journal_high_water_entries: number;
  journal_low_water_entries: number;
  journal_max_age_seconds: number;
  journal_clear_age_seconds: number;
  cache_dirty_high_water_bytes: number;
  cache_dirty_low_water_bytes: number;
  cache_min_free_bytes: number;
  cache_resume_free_bytes: number;
}

export interface CacheConfig {
  max_bytes: number;
  dirty_max_bytes: number;
}

export interface ReconnectBackoffConfig {
  start_ms: number;
  max_ms: number;
  multiplier: number;
  jitter_percent: number;
}

export interface BridgeConfig {
  url: string;
  token: string;
  reconnect_backoff: ReconnectBackoffConfig;
}

export interface AetherConfig {
  journal_sync_policy: SyncPolicy;
  journal_sync_interval_ms: number;
  journal_sync_backlog_bytes: number;
  journal_segment_bytes: number;
  state_dir: string;
  metrics_listen: string;
  backpressure: BackpressureConfig;
  cache: CacheConfig;
  bridge: BridgeConfig;
}

/** Programmatic overrides: the highest layer. Field names come from the schema's `override` column. */
export interface ConfigOverrides {
  journal_sync_policy?: SyncPolicy;
  journal_sync_interval_ms?: number;
  journal_sync_backlog_bytes?: number;
  journal_segment_bytes?: number;
  state_dir?: string;
  metrics_listen?: string;
  journal_backpressure_high_bytes?: number;
  journal_backpressure_low_bytes?: number;
  journal_backpressure_high_entries?: number;
  journal_backpressure_low_entries?: number;
  journal_backpressure_high_age?: number;
  journal_backpressure_clear_age?: number;
  cache_backpressure_dirty_high_bytes?: number;
  cache_backpressure_dirty_low_bytes?: number;
  cache_backpressure_min_free_bytes?: number;
  cache_backpressure_resume_free_bytes?: number;
  cache_max_bytes?: number;
  cache_dirty_max_bytes?: number;
  bridge_url?: string;
  bridge_token?: string;
}

/** The jitter factor the bridge uses: `jitter_percent / 100` (seed 004). */
export function jitterFactor(backoff: ReconnectBackoffConfig): number {
  return backoff.jitter_percent / 100;
}
