/** Metric names. The ones the seed pages give are exact and must never change. */
export const METRIC = {
  // seeds 000 and 001
  journalWalFlushTotal: 'aether_journal_wal_flush_total',
  journalSyncCountTotal: 'aether_journal_sync_count_total',
  journalPendingBytes: 'aether_journal_pending_bytes',
  journalPendingEntries: 'aether_journal_pending_entries',
  journalOldestEntryAgeSeconds: 'aether_journal_oldest_entry_age_seconds',
  // seed 002
  cacheDirtyBytes: 'aether_cache_dirty_bytes',
} as const;
