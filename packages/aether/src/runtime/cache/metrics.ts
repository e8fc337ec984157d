import { Counter, Gauge, type Registry } from 'prom-client';
import { METRIC } from '../../metrics/names.js';

export const CACHE_METRIC = {
  dirtyBytes: METRIC.cacheDirtyBytes,
  cleanBytes: 'aether_cache_clean_bytes',
  blocks: 'aether_cache_blocks',
  diskFreeBytes: 'aether_cache_disk_free_bytes',
  evictionsTotal: 'aether_cache_evictions_total',
  evictedBytesTotal: 'aether_cache_evicted_bytes_total',
  dirtyQuotaRejectionsTotal: 'aether_cache_dirty_quota_rejections_total',
  verifyFailuresTotal: 'aether_cache_verify_failures_total',
  ioErrorsTotal: 'aether_cache_io_errors_total',
} as const;

export interface CacheGauges {
  dirtyBytes(): number;
  cleanBytes(): number;
  blocks(): number;
  diskFreeBytes(): number | null;
}

/** Gauges are read at scrape time from the cache's own counters, so a write costs no metric update. */
export class CacheMetrics {
  readonly evictions: Counter;
  readonly evictedBytes: Counter;
  readonly dirtyQuotaRejections: Counter;
  readonly verifyFailures: Counter;
  readonly ioErrors: Counter;

  constructor(registry: Registry, g: CacheGauges) {
    const registers = [registry];
    const gauge = (name: string, help: string, read: () => number | null): void => {
      new Gauge({
        name,
        help,
        registers,
        collect() {
          const v = read();
          if (v !== null) this.set(v);
        },
      });
    };
    gauge(CACHE_METRIC.dirtyBytes, 'Bytes in the cache not yet committed downstream (exact).', g.dirtyBytes);
    gauge(CACHE_METRIC.cleanBytes, 'Bytes of committed file data held in the cache (exact).', g.cleanBytes);
    gauge(CACHE_METRIC.blocks, 'Cache blocks holding clean or dirty data.', g.blocks);
    gauge(CACHE_METRIC.diskFreeBytes, 'Free bytes of the file system holding the cache (statfs, estimated between measurements).', g.diskFreeBytes);
    this.evictions = new Counter({ name: CACHE_METRIC.evictionsTotal, help: 'Cache blocks whose clean data was evicted to stay under the clean quota.', registers });
    this.evictedBytes = new Counter({ name: CACHE_METRIC.evictedBytesTotal, help: 'Clean bytes evicted to stay under the clean quota.', registers });
    this.dirtyQuotaRejections = new Counter({
      name: CACHE_METRIC.dirtyQuotaRejectionsTotal,
      help: 'Writes refused with ENOSPC because they would pass the dirty quota.',
      registers,
    });
    this.verifyFailures = new Counter({
      name: CACHE_METRIC.verifyFailuresTotal,
      help: 'Blocks from the index dropped after a restart because their bytes did not match the recorded checksum.',
      registers,
    });
    this.ioErrors = new Counter({ name: CACHE_METRIC.ioErrorsTotal, help: 'Background cache file operations that failed (deleting dropped blocks, measuring free space).', registers });
  }
}
