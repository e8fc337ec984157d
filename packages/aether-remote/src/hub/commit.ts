import type { BlockMapTx } from '@aether/core/tree/content';
import type { BatchFrame, FeedEntry, Resolution } from '../protocol/frames.js';
import { hashesOf } from '../protocol/wire-ops.js';
import { HubApplier, type RuleTables } from './rules.js';
import type { HubStateRow, MountRow } from './tables.js';

/**
 * The rows a commit reads and writes besides the tree, synchronously, inside the store's
 * transaction: SQLite's tables directly (HubTables), or PostgreSQL's rows read before and
 * written after (PgCommitTables).
 */
export interface CommitTables extends RuleTables {
  state(): HubStateRow;
  setState(s: Omit<HubStateRow, 'hub_id'>): void;
  mount(mountId: string): MountRow | undefined;
  setApplied(mountId: string, seq: number): void;
  hasChunk(hash: string): boolean;
  appendFeed(hubSeq: number, mountId: string, journalSeq: number, entry: string): void;
  pruneFeed(upToSeq: number): void;
  /** The resolutions of the mount's committed batches it may not have had (hub_held_resolutions). */
  heldResolutions(mountId: string): Resolution[];
  setHeldResolutions(mountId: string, rs: Resolution[]): void;
}

export interface CommitRequest {
  mountId: string;
  mountNo: number;
  batch: BatchFrame;
  /** Chunks this connection uploaded and the hub has not committed yet. */
  staged: ReadonlyMap<string, Buffer>;
  nowMs: number;
  feedRetainEntries: number;
}

export type CommitOutcome =
  | { duplicate: true; journalSeq: number; resolutions: Resolution[] }
  | { duplicate: false; journalSeq: number; hubSeq: number | null; resolutions: Resolution[]; feedFloor: number };

/** A batch names chunks the hub neither stores nor holds staged for this connection. */
export class MissingChunksError extends Error {
  constructor(readonly hashes: string[]) {
    super(`${hashes.length} chunk(s) the batch refers to were never uploaded`);
    this.name = 'MissingChunksError';
  }
}

/** The staged chunks a batch refers to: what its transaction must make durable before it commits. */
export function chunksFor(batch: BatchFrame, staged: ReadonlyMap<string, Buffer>): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const e of batch.entries) {
    for (const h of hashesOf(e.op)) {
      const data = staged.get(h);
      if (data) out.set(h, data);
    }
  }
  return out;
}

/** The chunk hashes a batch names, each once. */
export function namedChunks(batch: BatchFrame): string[] {
  const out = new Set<string>();
  for (const e of batch.entries) for (const h of hashesOf(e.op)) out.add(h);
  return [...out];
}

/**
 * A mount's batch, inside the store's transaction: skips what this mount already committed (a
 * re-sent batch), applies the rest with the conflict rules, and appends the changefeed entry
 * under the next hub sequence, all in the same transaction, so the tree, the feed and the
 * mount's applied sequence can never disagree after a crash.
 */
export function commitBatch(meta: BlockMapTx, tables: CommitTables, req: CommitRequest): CommitOutcome {
  const mount = tables.mount(req.mountId);
  if (!mount) throw new Error(`mount ${req.mountId} is not registered`);
  const { batch } = req;
  // A mount sends its entries from the first one not acknowledged to it (fromSeq): it has had the
  // resolutions before that. Those from there on may be of a batch whose ack it lost, and come
  // again with this ack (its own changefeed entry, which has them too, may be gone from the
  // retained feed by the time it is back: a snapshot says nothing of them).
  const from = batch.fromSeq ?? batch.entries[0]?.seq;
  const held = tables.heldResolutions(req.mountId).filter((r) => from === undefined || r.jseq >= from);
  const again = held.filter((r) => r.jseq <= batch.upToSeq);
  if (batch.upToSeq <= mount.applied_seq) return { duplicate: true, journalSeq: mount.applied_seq, resolutions: again };
  const entries = batch.entries.filter((e) => e.seq > mount.applied_seq);
  const missing = new Set<string>();
  for (const e of entries) for (const h of hashesOf(e.op)) if (!req.staged.has(h) && !tables.hasChunk(h)) missing.add(h);
  if (missing.size > 0) throw new MissingChunksError([...missing]);

  const state = tables.state();
  tables.setApplied(req.mountId, batch.upToSeq);
  if (entries.length === 0) {
    tables.setHeldResolutions(req.mountId, held);
    return { duplicate: false, journalSeq: batch.upToSeq, hubSeq: null, resolutions: again, feedFloor: state.feed_floor };
  }

  const hubSeq = state.hub_seq + 1;
  let nextIno = state.next_ino;
  const applier = new HubApplier(meta, tables, { mountId: req.mountId, hubSeq, nowMs: req.nowMs, allocIno: () => nextIno++ });
  for (const e of entries) applier.apply(e, batch.baseSeq);
  const entry: FeedEntry = {
    hubSeq,
    mountId: req.mountId,
    mountNo: mount.mount_no,
    journalSeq: batch.upToSeq,
    committedMs: req.nowMs,
    ops: applier.ops,
    resolutions: applier.resolutions,
  };
  tables.appendFeed(hubSeq, req.mountId, batch.upToSeq, JSON.stringify(entry));
  const feedFloor = Math.max(state.feed_floor, hubSeq - req.feedRetainEntries);
  if (feedFloor > state.feed_floor) tables.pruneFeed(feedFloor);
  tables.setState({ hub_seq: hubSeq, feed_floor: feedFloor, next_ino: nextIno });
  tables.setHeldResolutions(req.mountId, [...held, ...applier.resolutions]);
  return { duplicate: false, journalSeq: batch.upToSeq, hubSeq, resolutions: [...again, ...applier.resolutions], feedFloor };
}
