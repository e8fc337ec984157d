export { DEFAULT_BLOCK_BYTES, FileCache, type CacheOptions, type CacheStats, type ClearResult, type DirtyReservation, type ReadResult, type WriteOptions } from './cache.js';
export { defaultStatfs, type StatfsFn } from './disk-free.js';
export { CACHE_METRIC } from './metrics.js';
