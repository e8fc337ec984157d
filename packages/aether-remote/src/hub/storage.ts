import type { SnapshotInode } from '../protocol/frames.js';
import type { CommitOutcome, CommitRequest } from './commit.js';
import type { MountRow } from './tables.js';

export interface FeedRow {
  hub_seq: number;
  /** The entry's JSON, sent as it is stored. */
  entry: string;
}

/** A page of the changefeed and the floor it was read with: one consistent read. */
export interface FeedPage {
  /** Entries at or below it are pruned: a cursor below it needs a snapshot. */
  floor: number;
  rows: FeedRow[];
}

/** The committed tree as of one hub sequence, read in pages (rows after the given key, ascending). */
export interface SnapshotReader {
  readonly hubSeq: number;
  inodes(afterIno: number, limit: number): Promise<SnapshotInode[]>;
  dentries(after: readonly [number, string], limit: number): Promise<[number, string, number][]>;
  blocks(after: readonly [number, number], limit: number): Promise<[number, number, string][]>;
  close(): Promise<void>;
}

/** What one run of the chunk reclaim did (chunk-reclaim.ts). */
export interface ChunkReclaim {
  /** Chunks dropped: unnamed for longer than the grace period. */
  dropped: number;
  /** Bytes given back (embedded: pack files deleted or rewritten; PostgreSQL: row data, freed by VACUUM). */
  freedBytes: number;
  /** Chunks unnamed for less than the grace period, kept for now. */
  dying: number;
}

/**
 * Where a hub keeps the committed tree, the chunks, the mounts and the changefeed: embedded
 * (SQLite and pack files, `sqlite-storage.ts`) or shared by several hubs (PostgreSQL,
 * `pg-storage.ts`, POSTGRES.md). Both run the same commit logic (commit.ts, rules.ts); they differ
 * only in where rows live and how commits are serialised.
 */
export interface HubStorage {
  readonly kind: 'embedded' | 'postgres';
  /** Names the changefeed: shared by every hub on one PostgreSQL database. */
  readonly hubId: string;
  /** The newest committed hub sequence this process knows of. */
  readonly hubSeq: number;
  /** Where the data is, for the banner (a PostgreSQL URL without its password). */
  readonly where: string;
  /** Reads the newest committed hub sequence (other hubs on the same database commit too). */
  refreshSeq(): Promise<number>;
  /** The mount's row, registering a new mount id under the next mount number. */
  register(mountId: string, nowMs: number): Promise<MountRow>;
  /** The hashes among `hashes` the store does not hold, in the order given. */
  missingChunks(hashes: readonly string[]): Promise<string[]>;
  readChunk(hash: string): Promise<Buffer | undefined>;
  countChunks(): Promise<number>;
  /** Commits a batch atomically and durably, serialised with every other commit on the same data. */
  commit(req: CommitRequest): Promise<CommitOutcome>;
  feedPage(after: number, limit: number): Promise<FeedPage>;
  openSnapshot(): Promise<SnapshotReader>;
  /** `fn` hears of commits made by other processes (their new hub sequence). */
  onRemoteCommit(fn: (hubSeq: number) => void): void;
  /**
   * Notes the chunks neither the tree nor a retained changefeed entry names (since `nowMs`, if
   * not noted before) and drops those noted at least `graceMs` ago; serialised with commits.
   */
  reclaimChunks(nowMs: number, graceMs: number): Promise<ChunkReclaim>;
  close(): Promise<void>;
}
