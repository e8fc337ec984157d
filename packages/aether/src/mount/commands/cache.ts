import type { CacheStats, ClearResult, FileCache } from '../../runtime/cache/cache.js';
import type { BackpressureCoordinator, BackpressureStatus, CacheReason } from '../../runtime/infra/backpressure/index.js';

/*
 * The `CACHE INSPECT` and `CACHE CLEAR` control commands, as plain functions returning JSON-able
 * replies; the control socket calls them. Neither waits on the backpressure gate: control commands
 * must work precisely when writers are held back.
 */

export interface CacheCommandContext {
  cache: FileCache;
  backpressure: BackpressureCoordinator;
}

export interface CacheInspectReply extends CacheStats {
  /** The first active cache reason (`dirty_bytes` before `disk_free`), or `none`. */
  cache_block_reason: CacheReason | 'none';
  cache_block_reasons: CacheReason[];
  backpressure_status: BackpressureStatus['status'];
  backpressure_source: BackpressureStatus['source'];
  backpressure: BackpressureStatus;
}

export type CacheClearReply = ClearResult & CacheInspectReply;

function report(ctx: CacheCommandContext): CacheInspectReply {
  const bp = ctx.backpressure.status();
  return {
    ...ctx.cache.stats(),
    cache_block_reason: bp.cache.reasons[0] ?? 'none',
    cache_block_reasons: bp.cache.reasons,
    backpressure_status: bp.status,
    backpressure_source: bp.source,
    backpressure: bp,
  };
}

/** `CACHE INSPECT`: measures free space now, re-evaluates backpressure, and reports. */
export async function cacheInspect(ctx: CacheCommandContext): Promise<CacheInspectReply> {
  await ctx.cache.refreshDiskFree();
  return report(ctx);
}

/** `CACHE CLEAR`: drops clean data only (never dirty), reports what it freed and the state after. */
export async function cacheClear(ctx: CacheCommandContext): Promise<CacheClearReply> {
  const freed = await ctx.cache.clear();
  ctx.backpressure.evaluate();
  return { ...freed, ...report(ctx) };
}
