import type { Setting } from './types.js';

const SOURCES = ['packages/aether/src/config/schema/cache.ts', 'packages/aether/src/runtime/cache/cache.ts'];

export const cacheSettings: Setting[] = [
  {
    path: ['cache', 'max_bytes'],
    env: 'AFS_AETHER_CACHE_MAX_BYTES',
    override: 'cache_max_bytes',
    type: { kind: 'u64', unit: 'bytes' },
    default: 1073741824,
    defaultNote: '1 GiB',
    section: 'cache',
    reloadable: true,
    doc: {
      whatItDoes: [
        'Sets the quota of clean (already committed) file data kept in the local cache. Past it, the least recently used clean data is evicted.',
        'Dirty data (not yet committed) is never evicted and does not count against this quota.',
      ],
      runtime: ['Evicted data is fetched again from the store or hub on the next read.', 'A reload applies the new quota at once; lowering it evicts down to the new value.'],
      valueNotes: ['`0` keeps no clean data cached.'],
      interactions: ['Dirty data is bounded separately by `AFS_AETHER_CACHE_DIRTY_MAX_BYTES`.'],
      observability: ['`aether_cache_clean_bytes`', '`aether_cache_evictions_total`', '`aether cache inspect` reports `clean_bytes` and the quota.'],
      example: {
        env: { AFS_AETHER_CACHE_MAX_BYTES: '4294967296' },
        toml: '[cache]\nmax_bytes = 4294967296',
        explanation: 'Keeps up to 4 GiB of clean data on local disk.',
      },
    },
    sources: SOURCES,
  },
  {
    path: ['cache', 'dirty_max_bytes'],
    env: 'AFS_AETHER_CACHE_DIRTY_MAX_BYTES',
    override: 'cache_dirty_max_bytes',
    type: { kind: 'u64', unit: 'bytes' },
    default: 268435456,
    defaultNote: '256 MiB',
    section: 'cache',
    reloadable: true,
    doc: {
      whatItDoes: ['Sets the hard quota of dirty (not yet committed) bytes in the cache: a write that would pass it fails with `ENOSPC`.'],
      runtime: [
        'A rejected write changes nothing: data already written stays intact.',
        'Backpressure (`AFS_AETHER_CACHE_DIRTY_HIGH_WATER_BYTES`) normally makes writers wait well before this quota is reached.',
        'A reload applies the new quota to the next write.',
      ],
      valueNotes: ['`0` means no dirty data is accepted: every write that adds dirty bytes fails with `ENOSPC`.'],
      interactions: ['Keep it above `AFS_AETHER_CACHE_DIRTY_HIGH_WATER_BYTES`, so that writers wait before they fail.'],
      observability: ['`aether_cache_dirty_bytes`', '`aether_cache_dirty_quota_rejections_total`'],
      example: {
        env: { AFS_AETHER_CACHE_DIRTY_MAX_BYTES: '536870912' },
        toml: '[cache]\ndirty_max_bytes = 536870912',
        explanation: 'Up to 512 MiB of uncommitted data may accumulate before writes fail with ENOSPC.',
      },
    },
    sources: SOURCES,
  },
];
