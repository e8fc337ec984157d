import { decodeOp, OP_RECORD_TYPE, type Ino } from '@aether/core/tree/ops';
import { applyOp } from '@aether/core/tree/apply';
import { MemoryMeta } from '@aether/core/tree/meta';
import type { SyncDrain } from '@aether/core';
import { SerialDrain, type DrainJournal } from '@aether/core/mount/drain';
import type { BridgeClient } from '../bridge/client.js';
import type { Resolution } from '../protocol/frames.js';
import { blocksOfContent } from '../protocol/blocks.js';
import type { WireEntry, WireOp } from '../protocol/wire-ops.js';
import type { Replica } from './replica.js';

export interface BridgeDrainDeps {
  journal: DrainJournal;
  client: BridgeClient;
  replica: Replica;
  /** A file's whole current content (the mount's Vfs), undefined when it is no longer a file. */
  contentOf: (ino: Ino) => Promise<Buffer | undefined>;
  /** The hub sequence a file's unshipped local changes were made on (older than the batch's when remote changes came since). */
  contentBase?: (ino: Ino) => number | undefined;
  /** The hub sequence an unlink, rmdir or rename (journal entry `seq`) was made on. */
  opBase?: (seq: number) => number | undefined;
  /** The names the view still held of what a removal removed (WireEntry.viewKept), if any. */
  viewKept?: (seq: number) => [Ino, string][] | undefined;
  /**
   * The tree as of the last journal entry shipped (names → inodes), so that unlink, rmdir and
   * rename can carry the inode the mount saw under a name, as the protocol wants.
   */
  shipped: MemoryMeta;
  /**
   * Runs, and is waited for, before the journal commits a batch the hub acknowledged (the replica
   * holds it): what must be on disk before the entries leave the journal (kept base versions).
   */
  beforeCommit?: (upToSeq: number, resolutions: readonly Resolution[]) => Promise<void>;
  onCommitted: (seq: number) => void;
  /** The hub resolved some ops otherwise than this mount applied them (conflicts): after the commit; `ops` by journal sequence. */
  onResolutions: (resolutions: Resolution[], ops: ReadonlyMap<number, WireOp>) => void;
  log: (line: string) => void;
  /** A journal entry did not apply to the shipped tree: it may differ from the replica once acknowledged. */
  diverged?: () => void;
  maxBatchEntries?: number;
}

/**
 * Bridge mode's drain: ships durable journal entries to the hub in order, one batch at a time.
 * Writes and truncates of a file are coalesced into one `content` op (its whole block map) at the
 * position of its last write in the batch. On the ack it waits until the replica holds the hub's
 * changefeed entry for the batch (so reads that fall through the cache find the content), then
 * commits the journal and marks the cache clean. While the hub is unreachable the upload waits in
 * the client and the journal grows until backpressure engages.
 */
export class BridgeDrain extends SerialDrain implements SyncDrain {
  /**
   * The batch in flight, from its upload until the replica holds it: its changefeed entry needs no
   * chunk download, and a snapshot may hold its ops while the replica does not yet.
   */
  private inFlight: { entries: readonly WireEntry[]; chunks: ReadonlyMap<string, Buffer> } = { entries: [], chunks: new Map() };

  constructor(private readonly d: BridgeDrainDeps) {
    // A pass may wait for a hub that is down: closing must not wait for it.
    super(d.log, { delayMs: 20, retryDelayMs: 500, retryMaxMs: 500, name: 'bridge drain', awaitPassOnClose: false });
  }

  /** Also the batch already waiting in the client for the hub: a pause while offline let it go out on the reconnect (a review). */
  override pause(): void {
    super.pause();
    this.d.client.holdUploads(true);
  }

  override resume(): void {
    this.d.client.holdUploads(false);
    super.resume();
  }

  get backlog(): number {
    return Math.max(0, this.d.journal.lastSeq - this.d.journal.committedSeq);
  }

  protected hasWork(): boolean {
    return this.d.journal.lastSeq > this.d.journal.committedSeq;
  }

  protected async pass(): Promise<void> {
    const { journal } = this.d;
    for (;;) {
      if (this.paused || this.closed) return;
      const from = journal.committedSeq + 1;
      const upTo = journal.durableSeq;
      if (upTo < from) return;
      const batch = await this.build(from, upTo);
      if (!batch) return;
      this.inFlight = batch;
      try {
        const ack = await this.d.client.upload(batch);
        // Reads of committed data go to the replica: it must hold this batch before the cache lets go
        // of it. A duplicate (acknowledged before a lost connection) is in the feed up to the welcome's sequence.
        if (ack.hubSeq !== null) {
          await this.d.replica.waitFor(ack.hubSeq);
          // Reached through a snapshot (a resync, or a mount behind the retained feed), which
          // holds the batch without saying so: the replica holds this mount's entries up to it.
          if (this.d.replica.ownJournalSeq < batch.upToSeq) await this.d.replica.noteOwnJournalSeq(batch.upToSeq);
        } else {
          await this.d.replica.noteOwnJournalSeq(batch.upToSeq);
          // A duplicate, or a batch whose new part was all skipped: earlier parts the hub committed
          // before a lost ack are in the feed up to the welcome's sequence.
          await this.d.replica.waitFor(this.d.client.welcome?.hubSeq ?? 0);
        }
        if (this.closed) return;
        const resolutions = this.resolutionsOf(from, batch.upToSeq, ack);
        await this.d.beforeCommit?.(batch.upToSeq, resolutions);
        if (this.closed) return;
        await journal.commit(batch.upToSeq);
        this.d.onCommitted(batch.upToSeq);
        if (resolutions.length) this.d.onResolutions(resolutions, new Map(batch.entries.map((e) => [e.seq, e.op])));
        await this.d.replica.dropOwnResolutions(batch.upToSeq);
      } finally {
        this.inFlight = { entries: [], chunks: new Map() };
      }
    }
  }

  /**
   * The hub's resolutions of journal entries `from`..`upTo`: the ack's, and those of earlier parts
   * the hub committed while their ack was lost (a re-sent batch, or the part of it the hub had),
   * which the hub gives again with the ack and this mount's own changefeed entries hold (when the
   * mount came back behind the retained feed, only the ack has them). Rows below `from` were
   * acted on before a crash kept them from being dropped.
   */
  private resolutionsOf(from: number, upTo: number, ack: { hubSeq: number | null; resolutions: Resolution[] }): Resolution[] {
    const held = [...this.d.replica.ownResolutions(upTo)].filter(([seq]) => seq >= from && (ack.hubSeq === null || seq !== upTo));
    // The hub gives the earlier parts' resolutions again with the ack (they may have come through
    // the changefeed too): each once.
    const seen = new Set<string>();
    return [...held.flatMap(([, rs]) => rs), ...ack.resolutions].filter((r) => {
      const key = JSON.stringify(r);
      return !seen.has(key) && !!seen.add(key);
    });
  }

  /** A chunk of the batch in flight (this mount's own data), or undefined. */
  uploadedChunk(hash: string): Buffer | undefined {
    return this.inFlight.chunks.get(hash);
  }

  /** The ops of the batch in flight (none when nothing is). */
  get inFlightOps(): WireOp[] {
    return this.inFlight.entries.map((e) => e.op);
  }

  private async build(from: number, upTo: number): Promise<{ upToSeq: number; baseSeq: number; fromSeq: number; entries: WireEntry[]; chunks: Map<string, Buffer> } | undefined> {
    const max = this.d.maxBatchEntries ?? 4096;
    const entries: WireEntry[] = [];
    const lastWrite = new Map<Ino, { seq: number; timeMs: number }>();
    const shipped = this.d.shipped;
    let last = 0;
    let count = 0;
    for await (const e of this.d.journal.entries({ fromSeq: from })) {
      if (e.seq > upTo) break;
      last = e.seq;
      if (e.type !== OP_RECORD_TYPE) continue;
      const op = decodeOp(e.payload);
      let wire: WireOp | undefined;
      switch (op.t) {
        case 'write':
        case 'truncate':
          lastWrite.set(op.ino, { seq: e.seq, timeMs: op.timeMs });
          break;
        // The inodes the mount saw under the names when it made the op (the shipped tree may have
        // another mount's node under a name this mount's own creation failed to take there).
        case 'unlink':
        case 'rmdir':
          wire = { ...op, ino: op.ino ?? shipped.lookup(op.parent, op.name) ?? 0 };
          break;
        case 'rename':
          wire = { ...op, ino: op.ino ?? shipped.lookup(op.parent, op.name) ?? 0, dstIno: op.dstIno ?? shipped.lookup(op.newParent, op.newName) ?? 0 };
          break;
        default:
          wire = op;
      }
      if (op.t !== 'write' && op.t !== 'truncate') {
        try {
          applyOp(shipped, op, { keepOrphans: true });
        } catch (err) {
          this.d.diverged?.();
          this.d.log(`journal entry ${e.seq} does not apply to the shipped tree: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
      if (wire) entries.push({ seq: e.seq, op: wire });
      if (++count >= max) break;
    }
    if (last === 0) return undefined;
    const baseSeq = this.d.replica.cursor;
    // An unlink, rmdir or rename made on an older version than the batch's: remote changes since are unseen.
    for (const en of entries) {
      if (en.op.t !== 'unlink' && en.op.t !== 'rmdir' && en.op.t !== 'rename') continue;
      const base = this.d.opBase?.(en.seq);
      if (base !== undefined && base < baseSeq) en.baseSeq = base;
      const kept = this.d.viewKept?.(en.seq);
      if (kept && kept.length > 0) en.viewKept = kept;
    }
    const chunks = new Map<string, Buffer>();
    for (const [ino, { seq, timeMs }] of lastWrite) {
      // The file's content now, which may already include later writes: they ship again with
      // their own entries, and the end state is the same.
      const data = await this.d.contentOf(ino);
      if (data === undefined) continue;
      const b = blocksOfContent(data);
      for (const [h, c] of b.chunks) chunks.set(h, c);
      // Made on an older version than the batch's: the hub must see the remote changes since as unseen (a conflict).
      const base = this.d.contentBase?.(ino);
      entries.push({ seq, op: { t: 'content', ino, size: b.size, blocks: b.blocks, timeMs }, ...(base !== undefined && base < baseSeq ? { baseSeq: base } : {}) });
    }
    entries.sort((a, b) => a.seq - b.seq);
    return { upToSeq: last, baseSeq, fromSeq: from, entries, chunks };
  }
}
