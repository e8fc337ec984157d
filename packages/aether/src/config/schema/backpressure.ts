import type { Setting } from './types.js';

const JOURNAL_BP_SOURCES = [
  'packages/aether/src/config/schema/backpressure.ts',
  'packages/aether/src/config/rules.ts',
  'packages/aether/src/runtime/infra/backpressure/coordinator.ts',
];
const CACHE_BP_SOURCES = [...JOURNAL_BP_SOURCES, 'packages/aether/src/runtime/cache/cache.ts', 'packages/aether/src/mount/commands/cache.ts'];

const JOURNAL_SIGNALS = [
  '`aether_journal_pending_bytes`',
  '`aether_journal_pending_entries`',
  '`aether_journal_oldest_entry_age_seconds`',
  '`aether_backpressure_engaged{source="journal",reason}` and `aether_backpressure_transitions_total{source="journal",reason,transition}`',
];
const CACHE_SIGNALS = [
  'Dirty backlog gauge: `aether_cache_dirty_bytes`',
  'Cache inspect/admin reports include: `dirty_bytes`, `cache_block_reason`, backpressure status/source',
  '`aether_backpressure_engaged{source="cache",reason}` and `aether_backpressure_transitions_total{source="cache",reason,transition}`',
];
const JOURNAL_CLEAR = 'Journal backpressure engages when any high-water trigger fires (bytes, entries, or age) and clears only when all low-water checks pass: `pending_bytes <= journal_low_water_bytes`, `pending_entries <= journal_low_water_entries`, `oldest_age <= journal_clear_age`.';
const LIVE = 'Config reload applies the new threshold live; it takes effect on the next evaluation of the backpressure coordinator.';
const PENDING = '"Pending" means appended to the journal but not yet committed downstream (acknowledged by the hub, or drained into the embedded store in local mode).';

function journalWater(kind: 'bytes' | 'entries', side: 'high' | 'low', def: number, note: string): Setting {
  const upper = kind.toUpperCase();
  const sideUpper = side.toUpperCase();
  const env = `AFS_AETHER_JOURNAL_${sideUpper}_WATER_${upper}`;
  const other = `AFS_AETHER_JOURNAL_${side === 'high' ? 'LOW' : 'HIGH'}_WATER_${upper}`;
  const what = kind === 'bytes' ? 'pending journal bytes' : 'pending journal entries';
  const example = side === 'high' ? (kind === 'bytes' ? '134217728' : '200000') : kind === 'bytes' ? '100663296' : '100000';
  return {
    path: ['backpressure', `journal_${side}_water_${kind}`],
    env,
    override: `journal_backpressure_${side}_${kind}`,
    type: { kind: 'u64', unit: kind },
    default: def,
    defaultNote: note,
    section: 'backpressure',
    reloadable: true,
    doc: {
      whatItDoes:
        side === 'high'
          ? [`Defines the ${what} high-water threshold that engages journal-driven backpressure (reason \`${kind}\`): incoming writes wait while it is engaged.`, PENDING]
          : [`Defines the ${what} low-water threshold, one of the checks that must all pass before journal backpressure clears.`, 'This value does not engage backpressure by itself.'],
      runtime: [
        side === 'high' ? `Engages when \`pending_${kind} >= journal_high_water_${kind}\` (and high-water is > 0).` : `Clear check: \`pending_${kind} <= journal_low_water_${kind}\`.`,
        JOURNAL_CLEAR,
        'Reads, metadata reads and control commands never wait on backpressure.',
        LIVE,
      ],
      valueNotes: side === 'high' ? ['`0` disables this trigger; its low-water check still gates the clear of the other journal reasons (seed 001: clear is gated by all low-water checks).'] : ['`0` is allowed: this check then passes only once nothing is pending.'],
      interactions: [
        `Pair with \`${other}\` for hysteresis; a larger gap reduces block/clear flapping.`,
        'Tune alongside `AFS_AETHER_JOURNAL_MAX_AGE_SECS` and `AFS_AETHER_JOURNAL_CLEAR_AGE_SECS`.',
      ],
      observability: JOURNAL_SIGNALS,
      example: {
        env: { [env]: example },
        toml: `[backpressure]\njournal_${side}_water_${kind} = ${example}`,
        explanation:
          side === 'high'
            ? `Writes start waiting once ${example} ${kind} are pending.`
            : `Journal backpressure may clear once pending ${kind} fall to ${example} or lower (and the other low-water checks pass).`,
      },
    },
    sources: JOURNAL_BP_SOURCES,
  };
}

export const backpressureSettings: Setting[] = [
  journalWater('bytes', 'high', 67108864, '64 MiB'),
  journalWater('bytes', 'low', 50331648, '48 MiB'),
  journalWater('entries', 'high', 100000, ''),
  journalWater('entries', 'low', 50000, ''),
  {
    path: ['backpressure', 'journal_max_age_seconds'],
    env: 'AFS_AETHER_JOURNAL_MAX_AGE_SECS',
    override: 'journal_backpressure_high_age',
    type: { kind: 'u64', unit: 'seconds' },
    default: 30,
    section: 'backpressure',
    reloadable: true,
    doc: {
      whatItDoes: [
        'Defines the journal age high-water threshold that engages journal-driven transport backpressure.',
        'Age means the age of the oldest pending journal entry (`now - oldest_entry_timestamp`).',
        'When oldest pending age reaches this threshold, journal backpressure triggers.',
      ],
      runtime: [
        'Journal backpressure age-trigger condition: `oldest_age >= journal_max_age`.',
        'Backpressure clear remains gated by all low-water checks: `pending_bytes <= journal_low_water_bytes`, `pending_entries <= journal_low_water_entries`, `oldest_age <= journal_clear_age`.',
        'So this variable controls an engage threshold, while `AFS_AETHER_JOURNAL_CLEAR_AGE_SECS` is its clear-side companion.',
        'The coordinator re-evaluates age on a timer, so age engages even when no new writes arrive.',
        LIVE,
      ],
      valueNotes: ['Avoid 0; with age-based backpressure enabled, 0 is not a practical setting (and it can never be greater than the clear age).'],
      interactions: [
        'Tune alongside `AFS_AETHER_JOURNAL_CLEAR_AGE_SECS`, `AFS_AETHER_JOURNAL_HIGH_WATER_BYTES` and `AFS_AETHER_JOURNAL_HIGH_WATER_ENTRIES`.',
        'Backpressure engages when any high-water trigger fires (bytes, entries, or age).',
        'Backpressure clears only when all low-water checks pass.',
        'A larger gap between max-age and clear-age reduces block/clear flapping.',
      ],
      observability: [...JOURNAL_SIGNALS, 'These signals are the primary way to verify age-trigger engagement and clear readiness.'],
      example: {
        env: {
          AFS_AETHER_JOURNAL_MAX_AGE_SECS: '45',
          AFS_AETHER_JOURNAL_CLEAR_AGE_SECS: '15',
          AFS_AETHER_JOURNAL_HIGH_WATER_BYTES: '67108864',
          AFS_AETHER_JOURNAL_LOW_WATER_BYTES: '50331648',
        },
        toml: '[backpressure]\njournal_max_age_seconds = 45\njournal_clear_age_seconds = 15',
        explanation: 'This engages age-based pressure when the oldest pending entry reaches 45s and allows age-side clear once it drops to 15s or lower (with byte/entry low-water checks also met).',
      },
    },
    sources: JOURNAL_BP_SOURCES,
  },
  {
    path: ['backpressure', 'journal_clear_age_seconds'],
    env: 'AFS_AETHER_JOURNAL_CLEAR_AGE_SECS',
    override: 'journal_backpressure_clear_age',
    type: { kind: 'u64', unit: 'seconds' },
    default: 10,
    section: 'backpressure',
    reloadable: true,
    doc: {
      whatItDoes: ['Defines the age clear-side check of journal backpressure: the oldest pending entry must be at most this old before journal backpressure may clear.'],
      runtime: ['Clear check: `oldest_age <= journal_clear_age`.', JOURNAL_CLEAR, LIVE],
      valueNotes: ['`0` is allowed: the age check then passes only once nothing is pending.'],
      interactions: ['Companion of `AFS_AETHER_JOURNAL_MAX_AGE_SECS`, which must stay strictly greater.'],
      observability: JOURNAL_SIGNALS,
      example: {
        env: { AFS_AETHER_JOURNAL_CLEAR_AGE_SECS: '15' },
        toml: '[backpressure]\njournal_clear_age_seconds = 15',
        explanation: 'Age-side clear happens once the oldest pending entry is 15 s old or younger.',
      },
    },
    sources: JOURNAL_BP_SOURCES,
  },
  {
    path: ['backpressure', 'cache_dirty_high_water_bytes'],
    env: 'AFS_AETHER_CACHE_DIRTY_HIGH_WATER_BYTES',
    override: 'cache_backpressure_dirty_high_bytes',
    type: { kind: 'u64', unit: 'bytes' },
    default: 67108864,
    defaultNote: '64 MiB',
    section: 'backpressure',
    reloadable: true,
    doc: {
      whatItDoes: ['Defines the cache dirty-byte high-water threshold that engages cache backpressure with reason `dirty_bytes`.'],
      runtime: [
        'Dirty-byte backpressure engages when `dirty_bytes >= high_water_dirty_bytes` (and high-water is > 0).',
        'It clears when `dirty_bytes <= low_water_dirty_bytes`.',
        'The coordinator is evaluated on every change of the cache\'s dirty bytes, not only when someone inspects the cache.',
        LIVE,
      ],
      valueNotes: ['`0` disables this trigger.'],
      interactions: [
        'Pair with `AFS_AETHER_CACHE_DIRTY_LOW_WATER_BYTES` for hysteresis.',
        'Separate from the hard dirty quota `AFS_AETHER_CACHE_DIRTY_MAX_BYTES`: backpressure makes writers wait, the quota fails them with `ENOSPC`.',
      ],
      observability: CACHE_SIGNALS,
      example: {
        env: { AFS_AETHER_CACHE_DIRTY_HIGH_WATER_BYTES: '134217728' },
        toml: '[backpressure]\ncache_dirty_high_water_bytes = 134217728',
        explanation: 'Writers wait once 128 MiB of cached data are not yet committed.',
      },
    },
    sources: CACHE_BP_SOURCES,
  },
  {
    path: ['backpressure', 'cache_dirty_low_water_bytes'],
    env: 'AFS_AETHER_CACHE_DIRTY_LOW_WATER_BYTES',
    override: 'cache_backpressure_dirty_low_bytes',
    type: { kind: 'u64', unit: 'bytes' },
    default: 50331648,
    defaultNote: '48 MiB',
    section: 'backpressure',
    reloadable: true,
    doc: {
      whatItDoes: [
        'Defines the cache dirty-byte low-water threshold used to clear cache backpressure when the active cache block reason is `dirty_bytes`.',
        'This value does not engage backpressure by itself. Engagement is controlled by `AFS_AETHER_CACHE_DIRTY_HIGH_WATER_BYTES`.',
      ],
      runtime: [
        'Dirty-byte backpressure engages when `dirty_bytes >= high_water_dirty_bytes` (and high-water is > 0).',
        'Dirty-byte backpressure clears when `dirty_bytes <= low_water_dirty_bytes`.',
        'The clear check is applied for the DirtyBytes reason path. If another reason (for example disk free space) is active, that reason\'s clear logic applies.',
        'Integration: unlike the seed\'s original note (evaluation only on `CACHE INSPECT`/`CACHE CLEAR`), Aether re-evaluates cache backpressure on every change of dirty bytes and free space, so the state is always current.',
        LIVE,
      ],
      valueNotes: ['`0` is allowed. With low-water 0, dirty-byte backpressure clears as soon as dirty bytes drop below the high-water re-trigger condition.'],
      interactions: [
        'Pair with `AFS_AETHER_CACHE_DIRTY_HIGH_WATER_BYTES` for hysteresis.',
        'At runtime, low-water is normalized to at most high-water when high-water is configured. If low-water is set above high-water, it is clamped down to high-water. This removes most hysteresis and can increase block/clear churn around the high threshold.',
        'Separate from hard caps: `AFS_AETHER_CACHE_DIRTY_MAX_BYTES` (hard dirty quota), `AFS_AETHER_CACHE_MAX_BYTES` (clean cache quota).',
      ],
      observability: CACHE_SIGNALS,
      example: {
        env: { AFS_AETHER_CACHE_DIRTY_HIGH_WATER_BYTES: '134217728', AFS_AETHER_CACHE_DIRTY_LOW_WATER_BYTES: '100663296' },
        toml: '[backpressure]\ncache_dirty_high_water_bytes = 134217728\ncache_dirty_low_water_bytes = 100663296',
        explanation: 'This sets a 128 MiB engage threshold and clears dirty-byte backpressure once dirty bytes fall to 96 MiB or lower.',
      },
    },
    sources: CACHE_BP_SOURCES,
  },
  {
    path: ['backpressure', 'cache_min_free_bytes'],
    env: 'AFS_AETHER_CACHE_MIN_FREE_BYTES',
    override: 'cache_backpressure_min_free_bytes',
    type: { kind: 'u64', unit: 'bytes' },
    default: 536870912,
    defaultNote: '512 MiB',
    section: 'backpressure',
    reloadable: true,
    doc: {
      whatItDoes: ['Engages cache backpressure with reason `disk_free` when the free bytes of the file system holding the cache (measured with `statfs`) fall below this value.'],
      runtime: ['Engages when `free_bytes < cache_min_free_bytes` (and the value is > 0).', 'Clears when `free_bytes >= cache_resume_free_bytes`.', LIVE],
      valueNotes: ['`0` disables this trigger.'],
      interactions: ['Pair with `AFS_AETHER_CACHE_RESUME_FREE_BYTES`, which is raised to at least this value.'],
      observability: [...CACHE_SIGNALS, '`CACHE INSPECT` reports the measured free bytes.'],
      example: {
        env: { AFS_AETHER_CACHE_MIN_FREE_BYTES: '1073741824' },
        toml: '[backpressure]\ncache_min_free_bytes = 1073741824',
        explanation: 'Writers wait while less than 1 GiB is free on the cache disk.',
      },
    },
    sources: CACHE_BP_SOURCES,
  },
  {
    path: ['backpressure', 'cache_resume_free_bytes'],
    env: 'AFS_AETHER_CACHE_RESUME_FREE_BYTES',
    override: 'cache_backpressure_resume_free_bytes',
    type: { kind: 'u64', unit: 'bytes' },
    default: 1073741824,
    defaultNote: '1 GiB',
    section: 'backpressure',
    reloadable: true,
    doc: {
      whatItDoes: ['Defines the free-space level at which `disk_free` cache backpressure clears.'],
      runtime: ['Clears when `free_bytes >= cache_resume_free_bytes`.', LIVE],
      valueNotes: [],
      interactions: ['Companion of `AFS_AETHER_CACHE_MIN_FREE_BYTES`; the gap between them is the hysteresis band.'],
      observability: CACHE_SIGNALS,
      example: {
        env: { AFS_AETHER_CACHE_MIN_FREE_BYTES: '1073741824', AFS_AETHER_CACHE_RESUME_FREE_BYTES: '2147483648' },
        toml: '[backpressure]\ncache_resume_free_bytes = 2147483648',
        explanation: 'Disk-free backpressure engages under 1 GiB free and clears once 2 GiB are free again.',
      },
    },
    sources: CACHE_BP_SOURCES,
  },
];
