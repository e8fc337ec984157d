import { AetherError } from '../../errors.js';
import { systemClock, type Clock } from '../infra/clock.js';
import { journalDir } from './config.js';
import { nodeJournalFs, type JournalFs } from './fs-layer.js';
import { scanJournal } from './recovery.js';

/** What `aether journal inspect` prints (snake_case, like the other JSON replies). */
export interface JournalInspection {
  journal_dir: string;
  segments: { file: string; first_seq: number; last_seq: number; records: number; bytes: number }[];
  first_seq: number | null;
  last_seq: number | null;
  committed_seq: number;
  durable_seq: number;
  pending_entries: number;
  pending_bytes: number;
  oldest_pending_timestamp_ms: number | null;
  oldest_age_seconds: number | null;
  torn_tail: { found: false } | { found: true; segment: string; offset_bytes: number; bytes: number; reason: string; dropped_segments: string[] };
}

async function checkReadable(fs: JournalFs, dir: string): Promise<void> {
  try {
    await fs.readdir(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' || code === 'ENOTDIR' ? 'no journal directory at' : `cannot read (${code ?? 'error'}) the journal directory`;
    throw new AetherError('JOURNAL_NOT_FOUND', `${why} ${dir}`, { cause: err, context: { dir } });
  }
}

/**
 * Reports on the journal under `stateDir` without changing a byte: a torn tail is reported, not
 * cut, so this is safe beside a running mount and on a copy kept for analysis. Damage that
 * recovery would refuse (JOURNAL_CORRUPT, JOURNAL_SEGMENT_MISSING) is thrown the same way.
 */
export async function inspectJournal(opts: { stateDir: string; clock?: Clock; fs?: JournalFs }): Promise<JournalInspection> {
  const fs = opts.fs ?? nodeJournalFs;
  const dir = journalDir(opts.stateDir);
  await checkReadable(fs, dir);
  const scan = await scanJournal(fs, dir);
  const withRecords = scan.segments.filter((s) => s.records > 0);
  const oldest = scan.index.oldestTimestampMs;
  const nowMs = (opts.clock ?? systemClock).now();
  const torn = scan.tornTail;
  return {
    journal_dir: dir,
    segments: scan.segments.map((s) => ({ file: s.name, first_seq: s.firstSeq, last_seq: s.lastSeq, records: s.records, bytes: s.fileBytes })),
    first_seq: withRecords[0]?.firstSeq ?? null,
    last_seq: scan.lastSeq > 0 ? scan.lastSeq : null,
    committed_seq: scan.committedSeq,
    durable_seq: scan.durableSeq,
    pending_entries: scan.index.count,
    pending_bytes: scan.index.bytes,
    oldest_pending_timestamp_ms: oldest,
    oldest_age_seconds: oldest === null ? null : Math.max(0, nowMs - oldest) / 1000,
    torn_tail: torn
      ? { found: true, segment: torn.segment, offset_bytes: torn.offsetBytes, bytes: torn.cutBytes, reason: torn.reason, dropped_segments: torn.droppedSegments }
      : { found: false },
  };
}
