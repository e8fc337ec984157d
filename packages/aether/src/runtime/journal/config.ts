import { join } from 'node:path';
import type { AetherConfig, SyncPolicy } from '../../config/model.js';
import type { ConfigStore, SectionValues } from '../../config/store.js';
import type { Journal, JournalOptions } from './journal.js';
import { checkSyncSettings, type SyncSettings } from './sync.js';

/** The journal lives in `<state_dir>/journal`. */
export function journalDir(stateDir: string): string {
  return join(stateDir, 'journal');
}

/** The journal options the configuration decides. */
export function journalOptionsFromConfig(config: Readonly<AetherConfig>): Pick<JournalOptions, 'dir' | 'sync' | 'segmentBytes'> {
  return {
    dir: journalDir(config.state_dir),
    sync: { policy: config.journal_sync_policy, intervalMs: config.journal_sync_interval_ms, backlogBytes: config.journal_sync_backlog_bytes },
    segmentBytes: config.journal_segment_bytes,
  };
}

/** Sync settings from the values of the `journal` section a config observer receives. */
export function syncSettingsFromSection(values: SectionValues): SyncSettings {
  return checkSyncSettings({
    policy: values.journal_sync_policy as SyncPolicy,
    intervalMs: Number(values.journal_sync_interval_ms),
    backlogBytes: Number(values.journal_sync_backlog_bytes),
  });
}

/**
 * Applies reloaded sync settings to a running journal. The observer returns at once; a failed
 * switch flush is already counted (outcome `error`) and retried, and is reported to `onError`.
 */
export function observeJournalConfig(store: ConfigStore, journal: Journal, onError: (err: unknown) => void = () => undefined): () => void {
  return store.observe('journal', (change) => {
    journal.applySyncConfig(syncSettingsFromSection(change.new)).catch(onError);
  });
}
