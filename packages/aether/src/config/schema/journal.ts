import type { Setting } from './types.js';

const SYNC_SOURCES = [
  'packages/aether/src/config/schema/journal.ts',
  'packages/aether/src/config/resolve.ts',
  'packages/aether/src/config/store.ts',
  'packages/aether/src/runtime/journal/sync.ts',
  'packages/aether/src/metrics/names.ts',
];

const FLUSH_METRICS = [
  '`aether_journal_wal_flush_total` with labels `reason=backlog|interval|manual|shutdown` and `outcome=success|error`',
  '`aether_journal_sync_count_total` with label `policy=backlog|interval|manual|shutdown`',
];

export const journalSettings: Setting[] = [
  {
    path: ['journal_sync_policy'],
    env: 'AFS_AETHER_JOURNAL_SYNC_POLICY',
    override: 'journal_sync_policy',
    type: { kind: 'enum', values: ['interval', 'manual', 'immediate'] },
    default: 'interval',
    section: 'journal',
    reloadable: true,
    doc: {
      whatItDoes: [
        'Chooses when appended journal bytes are made durable with fsync.',
        'This is a journal durability cadence control: it decides which acknowledged writes survive a crash of the mount process.',
      ],
      runtime: [
        '`immediate`: an append resolves only after its bytes are fsynced; concurrent appends share one fsync (group commit). Background pending-byte tracking is skipped, so the backlog threshold does not apply.',
        '`interval`: each append adds to an unsynced-byte counter; a flush happens when the interval deadline passes (reason `interval`) or at once when the backlog threshold is reached (reason `backlog`). No timer runs while nothing is unsynced.',
        '`manual`: flushes happen only on an explicit flush (`aether journal flush`, `JOURNAL FLUSH`, or `fsync(2)` on a file in the mount), reason `manual`.',
        'Graceful shutdown always flushes (reason `shutdown`), whatever the policy.',
        'A config reload switches the policy live; the switch first flushes whatever is unsynced.',
      ],
      valueNotes: ['Matching is exact and case-sensitive (`Interval` is invalid).'],
      interactions: [
        'Tune alongside `AFS_AETHER_JOURNAL_SYNC_INTERVAL_MS` and `AFS_AETHER_JOURNAL_SYNC_BACKLOG_BYTES`.',
        'Durability contract: after `kill -9` of the mount, every write that returned under `immediate`, and every write older than the interval (or covered by a returned `fsync(2)`) under `interval`, is present after remount.',
      ],
      observability: FLUSH_METRICS,
      example: {
        env: { AFS_AETHER_JOURNAL_SYNC_POLICY: 'immediate' },
        toml: 'journal_sync_policy = "immediate"',
        explanation: 'Every write returns only once its journal record is on disk; concurrent writers share fsyncs.',
      },
    },
    sources: SYNC_SOURCES,
  },
  {
    path: ['journal_sync_interval_ms'],
    env: 'AFS_AETHER_JOURNAL_SYNC_INTERVAL_MS',
    override: 'journal_sync_interval_ms',
    type: { kind: 'u64', unit: 'ms' },
    default: 5,
    section: 'journal',
    reloadable: true,
    range: { minExclusive: 0 },
    doc: {
      whatItDoes: ['Sets the flush deadline of the `interval` sync policy: unsynced journal bytes are fsynced at most this long after the first of them was appended.'],
      runtime: [
        'Applies only under `journal_sync_policy = "interval"`.',
        'The deadline is armed by the first unsynced append and re-armed after each successful flush while bytes remain unsynced; no timer runs while nothing is unsynced.',
        'A config reload applies the new interval from the next deadline.',
      ],
      valueNotes: [],
      interactions: [
        'Tune alongside `AFS_AETHER_JOURNAL_SYNC_POLICY` and `AFS_AETHER_JOURNAL_SYNC_BACKLOG_BYTES`.',
        'Larger values batch more appends per fsync and widen the window of writes a crash can lose.',
      ],
      observability: FLUSH_METRICS,
      example: {
        env: { AFS_AETHER_JOURNAL_SYNC_INTERVAL_MS: '20' },
        toml: 'journal_sync_interval_ms = 20',
        explanation: 'Unsynced journal bytes are flushed at most 20 ms after they were appended.',
      },
    },
    sources: SYNC_SOURCES,
  },
  {
    path: ['journal_sync_backlog_bytes'],
    env: 'AFS_AETHER_JOURNAL_SYNC_BACKLOG_BYTES',
    override: 'journal_sync_backlog_bytes',
    type: { kind: 'u64', unit: 'bytes' },
    default: 2097152,
    defaultNote: '2 MiB',
    section: 'journal',
    reloadable: true,
    doc: {
      whatItDoes: [
        'Defines an early WAL flush trigger for journal sync when pending appended bytes reach the configured backlog threshold.',
        'This is a journal durability cadence control, not a transport backpressure threshold.',
      ],
      runtime: [
        'In `interval` sync policy, each append increases a pending-byte counter.',
        'When `pending_bytes >= journal_sync_backlog_bytes` and `journal_sync_backlog_bytes > 0`, the sync controller triggers an immediate WAL flush with reason `backlog`, resets pending bytes on success, and schedules the next interval deadline.',
        'Policy interactions: `interval`: backlog threshold is active. `manual`: backlog threshold is ignored; flushes happen only via explicit manual flush. `immediate`: background append tracking is skipped, so backlog threshold does not apply.',
      ],
      valueNotes: ['`0` disables backlog-triggered flushes. In `interval` policy, timer-based flushing can still occur.'],
      interactions: [
        'Tune alongside `AFS_AETHER_JOURNAL_SYNC_POLICY` and `AFS_AETHER_JOURNAL_SYNC_INTERVAL_MS`.',
        'Lower values flush more often (lower pending-byte peaks, higher flush frequency).',
        'Higher values flush less often (larger pending-byte bursts before forced flush).',
        'Config reload can update this threshold at runtime; observers receive the changed sync config and update journal sync policy state.',
      ],
      observability: [...FLUSH_METRICS, 'These counters confirm whether backlog-triggered flushes are actually firing.'],
      example: {
        env: {
          AFS_AETHER_JOURNAL_SYNC_POLICY: 'interval',
          AFS_AETHER_JOURNAL_SYNC_INTERVAL_MS: '5',
          AFS_AETHER_JOURNAL_SYNC_BACKLOG_BYTES: '1048576',
        },
        toml: 'journal_sync_backlog_bytes = 1048576',
        explanation: 'This keeps interval mode active, but forces an early WAL flush whenever pending append bytes reach 1 MiB before the timer fires.',
      },
    },
    sources: SYNC_SOURCES,
  },
  {
    path: ['journal_segment_bytes'],
    env: 'AFS_AETHER_JOURNAL_SEGMENT_BYTES',
    override: 'journal_segment_bytes',
    type: { kind: 'u64', unit: 'bytes' },
    default: 67108864,
    defaultNote: '64 MiB',
    section: 'journal',
    reloadable: false,
    range: { min: 4096 },
    doc: {
      whatItDoes: [
        'Sets the size at which the journal closes its current segment file and starts a new one.',
        'Fully committed segments are deleted, so smaller segments return disk space sooner; larger segments mean fewer files and directory fsyncs.',
      ],
      runtime: [
        'Read when the journal opens; a changed value needs a restart of the mount (a reload reports it as restart-required).',
        'A single record larger than the segment size is still written whole into its own segment.',
      ],
      valueNotes: [],
      interactions: ['Disk space held by the journal is at least the pending bytes rounded up to whole segments.'],
      observability: ['`aether journal inspect` lists the segments and their sizes.'],
      example: {
        env: { AFS_AETHER_JOURNAL_SEGMENT_BYTES: '16777216' },
        toml: 'journal_segment_bytes = 16777216',
        explanation: 'The journal rolls to a new 16 MiB segment file; committed segments are released sooner.',
      },
    },
    sources: ['packages/aether/src/config/schema/journal.ts', 'packages/aether/src/runtime/journal/segment.ts'],
  },
];
