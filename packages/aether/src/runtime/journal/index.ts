export { Journal, SEGMENT_BYTES_MIN, type JournalEntry, type JournalOptions, type JournalSpan } from './journal.js';
export { decodeRecord } from './record.js';
export { journalDir, journalOptionsFromConfig, observeJournalConfig, syncSettingsFromSection } from './config.js';
export { inspectJournal, type JournalInspection } from './inspect.js';
export { nodeJournalFs, type JournalFile, type JournalFs, type OpenMode } from './fs-layer.js';
export { JOURNAL_METRIC } from './metrics.js';
export { FLUSH_REASONS, type FlushReason, type RetrySettings, type SyncPolicy, type SyncSettings } from './sync.js';
export type { RecoveryReport, TornTail } from './recovery.js';
export { RECORD_HEADER_BYTES, RECORD_PAYLOAD_BYTES_MAX, recordBytes } from './record.js';
