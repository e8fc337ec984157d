/** What the journal tells the backpressure coordinator: exact pending figures, and when they change. */
export interface JournalPending {
  /** Bytes appended but not yet committed downstream. */
  pendingBytes: number;
  /** Entries appended but not yet committed downstream. */
  pendingEntries: number;
  /** Append time (ms since epoch) of the oldest pending entry; null when nothing is pending. */
  oldestPendingTimestampMs: number | null;
}

export interface JournalPendingSource {
  pending(): JournalPending;
  /** Calls `listener` after every change of the pending figures; returns an unsubscribe. */
  onPendingChange(listener: () => void): () => void;
}
