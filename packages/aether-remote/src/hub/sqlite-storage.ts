import { mkdirSync } from 'node:fs';
import type { Database } from 'better-sqlite3';
import { StateLock } from '@aether/core/mount/state-lock';
import { toInode, type InodeRow } from '@aether/core/store/sqlite-meta';
import { Store } from '@aether/core/store/store';
import { markDyingChunks, unmarkDying } from './chunk-reclaim.js';
import { chunksFor, commitBatch, namedChunks, type CommitOutcome, type CommitRequest } from './commit.js';
import { HUB_EXTENSION } from './schema.js';
import type { ChunkReclaim, FeedPage, HubStorage, SnapshotReader } from './storage.js';
import { HubTables, type MountRow } from './tables.js';

/**
 * The embedded store (the default): the same Store local mode embeds, with the hub's tables in its
 * SQLite database, so a batch's tree changes, chunk index rows, changefeed entry and the mount's
 * applied sequence commit in one transaction. One process owns it; commits run one at a time
 * through the store.
 */
export class SqliteHubStorage implements HubStorage {
  readonly kind = 'embedded';
  readonly hubId: string;
  readonly store: Store;
  /** Committed state, for answers that must never see a commit in flight. */
  readonly reader: HubTables;
  private readonly readerDb: Database;
  private writer: HubTables | undefined;
  private seq: number;

  /** One hub per data directory: two would number the changefeed each on its own. */
  private readonly lock: StateLock;

  private constructor(readonly where: string) {
    mkdirSync(where, { recursive: true });
    this.lock = StateLock.acquire(where, { dir: 'data directory', owner: 'hub' });
    try {
      this.store = Store.open(where, undefined, { extensions: [HUB_EXTENSION] });
    } catch (err) {
      this.lock.release();
      throw err;
    }
    this.readerDb = this.store.openReader();
    this.reader = new HubTables(this.readerDb);
    const state = this.reader.state();
    this.hubId = state.hub_id;
    this.seq = state.hub_seq;
  }

  static open(dataDir: string): SqliteHubStorage {
    return new SqliteHubStorage(dataDir);
  }

  get hubSeq(): number {
    return this.seq;
  }

  refreshSeq(): Promise<number> {
    return Promise.resolve(this.seq);
  }

  private writerTables(db: Database): HubTables {
    if (this.writer?.db !== db) this.writer = new HubTables(db);
    return this.writer;
  }

  async register(mountId: string, nowMs: number): Promise<MountRow> {
    const known = this.reader.mount(mountId);
    if (known) return known;
    return this.store.transaction((tx) => {
      const w = this.writerTables(tx.db);
      return w.mount(mountId) ?? w.addMount(mountId, nowMs);
    });
  }

  missingChunks(hashes: readonly string[]): Promise<string[]> {
    // A chunk whose copy is damaged or gone on disk counts as missing: the mount uploads it, and
    // the commit stores it again (ChunkStore.putMany). Said to be had, the mount's new data was lost.
    return Promise.resolve(hashes.filter((h) => !this.reader.hasChunk(h) || !this.store.chunks.hasIntact(h)));
  }

  readChunk(hash: string): Promise<Buffer | undefined> {
    return Promise.resolve(this.reader.hasChunk(hash) ? this.store.chunks.get(hash) : undefined);
  }

  countChunks(): Promise<number> {
    return Promise.resolve(this.store.chunks.count);
  }

  async commit(req: CommitRequest): Promise<CommitOutcome> {
    const outcome = await this.store.transaction((tx) => {
      const out = commitBatch(tx.meta, this.writerTables(tx.db), req);
      // A chunk named again is no longer dying: unnamed later, its grace starts over.
      if (!out.duplicate) unmarkDying(tx.db, namedChunks(req.batch));
      return out;
    }, chunksFor(req.batch, req.staged));
    if (!outcome.duplicate && outcome.hubSeq !== null) this.seq = outcome.hubSeq;
    return outcome;
  }

  feedPage(after: number, limit: number): Promise<FeedPage> {
    // Read with no await between: commits run on this thread, so none can prune the feed in between.
    return Promise.resolve({ floor: this.reader.state().feed_floor, rows: this.reader.feedAfter(after, limit) });
  }

  openSnapshot(): Promise<SnapshotReader> {
    const db = this.store.openReader();
    db.exec('BEGIN');
    const { hub_seq: hubSeq } = db.prepare('SELECT hub_seq FROM hub_state WHERE id = 1').get() as { hub_seq: number };
    const inodes = db.prepare('SELECT * FROM inodes WHERE ino > ? ORDER BY ino LIMIT ?');
    const dentries = db.prepare('SELECT parent, name, ino FROM dentries WHERE (parent, name) > (?, ?) ORDER BY parent, name LIMIT ?').raw();
    const blocks = db.prepare('SELECT ino, idx, hash FROM blocks WHERE (ino, idx) > (?, ?) ORDER BY ino, idx LIMIT ?').raw();
    return Promise.resolve({
      hubSeq,
      inodes: (after, limit) => Promise.resolve((inodes.all(after, limit) as InodeRow[]).map(toInode)),
      dentries: (after, limit) => Promise.resolve(dentries.all(after[0], after[1], limit) as [number, string, number][]),
      blocks: (after, limit) => Promise.resolve(blocks.all(after[0], after[1], limit) as [number, number, string][]),
      close: () => {
        db.exec('COMMIT');
        db.close();
        return Promise.resolve();
      },
    });
  }

  async reclaimChunks(nowMs: number, graceMs: number): Promise<ChunkReclaim> {
    await this.store.transaction(({ db }) => markDyingChunks(db, nowMs, graceMs));
    // As local mode's store does: index rows first, then packs mostly dead are rewritten (64 MiB a run).
    const r = await this.store.reclaimSpace(64 * 1024 * 1024);
    const dying = await this.store.transaction(({ db }) => {
      db.exec('DELETE FROM hub_dying WHERE hash NOT IN (SELECT hash FROM chunks)');
      return (db.prepare('SELECT COUNT(*) AS n FROM hub_dying').get() as { n: number }).n;
    });
    return { dropped: r.droppedChunks, freedBytes: r.freedBytes, dying };
  }

  onRemoteCommit(): void {
    // One process owns the embedded store: there are no other committers to hear of.
  }

  async close(): Promise<void> {
    await this.store.transaction(() => undefined).catch(() => undefined);
    this.readerDb.close();
    this.store.close();
    this.lock.release();
  }
}
