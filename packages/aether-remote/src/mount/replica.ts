import type { Database } from 'better-sqlite3';
import { AetherError } from '@aether/core/errors';
import type { ContentSource } from '@aether/core/mount/vfs';
import { BLOCK_BYTES, toInode, type InodeRow } from '@aether/core/store/sqlite-meta';
import { Store, type StoreExtension } from '@aether/core/store/store';
import { applyOp } from '@aether/core/tree/apply';
import { applyContent, type BlockRef } from '@aether/core/tree/content';
import type { Inode } from '@aether/core/tree/inode';
import { MemoryMeta } from '@aether/core/tree/meta';
import { ROOT_INO, type Op } from '@aether/core/tree/ops';
import type { FeedEvent } from '../bridge/client.js';
import type { FeedEntry, Resolution, SnapshotPartFrame } from '../protocol/frames.js';
import type { WireOp } from '../protocol/wire-ops.js';

/** The replica's own rows, committed in the same transaction as the tree they describe. */
const BRIDGE_EXTENSION: StoreExtension = {
  name: 'bridge',
  migrations: [
    'CREATE TABLE bridge_state (key TEXT PRIMARY KEY, value INTEGER NOT NULL)',
    // For each cursor, this mount's last journal sequence when the replica reached it (NULL: the
    // journal was not open yet): which remote entries a change replayed after a crash had seen.
    'CREATE TABLE bridge_marks (cursor INTEGER PRIMARY KEY, head INTEGER)',
    // A locally edited file's committed version from before a remote change replaced it: what its
    // unshipped edits were made on (blocks: JSON [[idx, hash], ...]; the replica keeps every chunk).
    'CREATE TABLE bridge_bases (ino INTEGER PRIMARY KEY, inode TEXT NOT NULL, blocks TEXT NOT NULL)',
    // The hub's resolutions of this mount's own batches, from their changefeed entries, by the
    // batch's last journal sequence, until the drain has acted on them: a batch the hub committed
    // whose ack was lost is acknowledged again as a duplicate, without them (JSON Resolution[]).
    'CREATE TABLE bridge_own_resolutions (journal_seq INTEGER PRIMARY KEY, resolutions TEXT NOT NULL)',
    // 1 when the base is the version this mount's edits went to a conflict copy with (rebase).
    'ALTER TABLE bridge_bases ADD COLUMN from_copy INTEGER NOT NULL DEFAULT 0',
  ],
  liveChunks: "SELECT json_extract(b.value, '$[1]') FROM bridge_bases, json_each(bridge_bases.blocks) AS b",
};

/** The mount's journal, as far as the replica's marks need it. */
export interface JournalPosition {
  /** The last journal sequence assigned. */
  readonly lastSeq: number;
  readonly committedSeq: number;
}

/** A file's committed version: the inode (its size included) and its blocks by index. */
interface Version {
  inode: Inode;
  blocks: Map<number, string>;
  /** Taken from a conflict copy (`rebase`): the hub keeps this version there, not under the inode. */
  fromCopy?: true;
}

/** A version a remote change replaced or removed. */
interface Replaced {
  v: Version;
  removed: boolean;
}

/** Fetches chunk data by hash (from the hub, or from chunks this mount just uploaded). */
export type ChunkFetcher = (hashes: string[]) => Promise<Map<string, Buffer>>;

export const INO_RANGE = 2 ** 32;

/**
 * The hub's committed tree as this mount last saw it, in the same Store code the hub runs
 * (`<state_dir>/replica`), fed by the changefeed. It is the committed content source for reads.
 * The feed cursor, the highest journal sequence of this mount the replica holds and the highest
 * inode number of this mount's range ever created are rows in the same database, written in the
 * same transaction as each entry: a restart resumes exactly where the replica is.
 */
export class Replica {
  readonly store: Store;
  private readonly reader: Database;
  private snapshot: SnapshotPartFrame[] | undefined;
  private applyingCount = 0;
  private readonly waiters: { hubSeq: number; resolve: () => void }[] = [];
  /** Remote changes applied: the orchestrator mirrors them into the mount's view. */
  onRemoteOps: ((ops: WireOp[], entry: FeedEntry) => void) | undefined;
  /** A snapshot replaced the tree: `base` is the tree before, `next` after (set once mounted, loaded only then). */
  onSnapshot: ((base: MemoryMeta, next: MemoryMeta) => void) | undefined;
  private readonly syncWaiters: (() => void)[] = [];
  private journal: JournalPosition | undefined;
  private unsettledHead: number | undefined;
  /** Kept base versions by inode (`bridge_bases`). */
  private readonly bases = new Map<number, Version>();
  /**
   * Whether a remote change that replaces (or, `removed`, deletes) a file keeps the version it
   * replaces as the file's base: for files with unacknowledged local changes, so the local
   * version still reads (and ships) whole, and for deleted files open here, which read on.
   */
  keepBase: ((ino: number, removed: boolean) => boolean) | undefined;
  /** Committed content as this mount reads it: a file with a kept base reads that. */
  readonly content: ContentSource = { readInto: (ino, offset, length, target, at) => this.readInto(ino, offset, length, target, at) };

  constructor(
    dir: string,
    private readonly mountId: string,
    private readonly inoBase: number,
  ) {
    this.store = Store.open(dir, undefined, { extensions: [BRIDGE_EXTENSION] });
    // One read-only connection for the replica's own rows: it sees committed transactions only.
    this.reader = this.store.openReader();
    for (const r of this.reader.prepare('SELECT ino, inode, blocks, from_copy FROM bridge_bases').all() as { ino: number; inode: string; blocks: string; from_copy: number }[]) {
      this.bases.set(r.ino, { inode: JSON.parse(r.inode) as Inode, blocks: new Map(JSON.parse(r.blocks) as [number, string][]), ...(r.from_copy ? { fromCopy: true as const } : {}) });
    }
  }

  private getState(key: string): number {
    return (this.reader.prepare('SELECT value FROM bridge_state WHERE key = ?').get(key) as { value: number } | undefined)?.value ?? 0;
  }

  /** The last hub sequence applied (0: nothing yet, not even a snapshot). */
  get cursor(): number {
    return this.getState('cursor');
  }

  /** Highest journal sequence of this mount that the replica holds. */
  get ownJournalSeq(): number {
    return this.getState('own_journal_seq');
  }

  /** Highest inode number of this mount's range the replica has seen created. */
  get maxOwnIno(): number {
    return Math.max(this.inoBase, this.getState('max_own_ino'));
  }

  /** True once the replica holds a whole hub state (a snapshot, possibly of an empty hub). */
  get synced(): boolean {
    return this.getState('synced') === 1;
  }

  /** Resolves once the replica holds hub sequence `hubSeq`. */
  waitFor(hubSeq: number): Promise<void> {
    if (this.cursor >= hubSeq) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ hubSeq, resolve }));
  }

  private wake(cursor: number): void {
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      const w = this.waiters[i]!;
      if (w.hubSeq <= cursor) {
        this.waiters.splice(i, 1);
        w.resolve();
      }
    }
  }

  /** Resolves once the replica is synced (the first snapshot applied). */
  whenSynced(): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  /** The committed inode named `name` in `parent`. */
  lookup(parent: number, name: string): number | undefined {
    return (this.reader.prepare('SELECT ino FROM dentries WHERE parent = ? AND name = ?').get(parent, name) as { ino: number } | undefined)?.ino;
  }

  /** A committed inode. */
  getInode(ino: number): Inode | undefined {
    return this.store.getInode(ino);
  }

  /** Where the committed inode `ino` is named (its first name). */
  nameOf(ino: number): { parent: number; name: string } | undefined {
    return this.reader.prepare('SELECT parent, name FROM dentries WHERE ino = ? LIMIT 1').get(ino) as { parent: number; name: string } | undefined;
  }

  /** The committed path of `ino` through its first names ("/a/b"), if it has one. */
  pathOf(ino: number): string | undefined {
    const parts: string[] = [];
    for (let at = ino, depth = 0; at !== ROOT_INO; depth++) {
      const n = depth < 4096 ? this.nameOf(at) : undefined;
      if (!n) return undefined;
      parts.push(n.name);
      at = n.parent;
    }
    return `/${parts.reverse().join('/')}`;
  }

  /** The committed names in directory `dir`. */
  children(dir: number): [string, number][] {
    return (this.reader.prepare('SELECT name, ino FROM dentries WHERE parent = ?').all(dir) as { name: string; ino: number }[]).map((r) => [r.name, r.ino]);
  }

  /**
   * The cursor a journal entry replayed after a restart was made on: the last one the replica
   * reached before the entry (the mount's view had the remote changes up to it, no later ones).
   * Undefined when no mark says (a replica from before the marks).
   */
  baseFor(journalSeq: number): number | undefined {
    const row = this.reader.prepare('SELECT MAX(cursor) AS c FROM bridge_marks WHERE head IS NOT NULL AND head < ?').get(journalSeq) as { c: number | null };
    return row.c ?? undefined;
  }

  /**
   * The journal is open (after the replay): marks made before it mean "after every entry it holds",
   * and so do marks naming entries a crash lost (their numbers are assigned again). They are set to
   * its last sequence by the next transaction, before any later mark.
   */
  async followJournal(journal: JournalPosition): Promise<void> {
    this.journal = journal;
    this.unsettledHead = journal.lastSeq;
    await this.store.transaction(() => undefined, undefined, (db) => this.settleMarks(db));
  }

  private settleMarks(db: Database): void {
    const head = this.unsettledHead;
    if (head === undefined) return;
    this.unsettledHead = undefined;
    db.prepare('UPDATE bridge_marks SET head = ? WHERE head IS NULL OR head > ?').run(head, head);
  }

  /** Runs right before the commit that moves the cursor to `cursor`: the moment the view can see it. */
  private mark(db: Database, cursor: number): void {
    this.settleMarks(db);
    const j = this.journal;
    if (j) {
      // Per journal sequence only the latest cursor counts; up to the commit watermark only the latest.
      db.prepare('DELETE FROM bridge_marks WHERE head = ?').run(j.lastSeq);
      db.prepare('DELETE FROM bridge_marks WHERE head <= ? AND cursor < (SELECT MAX(cursor) FROM bridge_marks WHERE head <= ?)').run(j.committedSeq, j.committedSeq);
    }
    db.prepare('INSERT OR REPLACE INTO bridge_marks (cursor, head) VALUES (?, ?)').run(cursor, j ? j.lastSeq : null);
  }

  private readInto(ino: number, offset: number, length: number, target: Buffer, at: number): number {
    const base = this.bases.get(ino);
    if (!base) return this.store.readInto(ino, offset, length, target, at);
    const end = Math.min(base.inode.size, offset + length);
    if (end <= offset) return 0;
    target.fill(0, at, at + end - offset);
    for (let idx = Math.floor(offset / BLOCK_BYTES); idx <= Math.floor((end - 1) / BLOCK_BYTES); idx++) {
      const hash = base.blocks.get(idx);
      if (hash === undefined) continue;
      const from = Math.max(offset, idx * BLOCK_BYTES);
      this.store.chunks.readUpTo(hash, target, at + from - offset, from - idx * BLOCK_BYTES, end - from);
    }
    return end - offset;
  }

  /** The inodes of the kept base versions (the size is the version's). */
  get baseInodes(): Inode[] {
    return [...this.bases.values()].map((v) => v.inode);
  }

  /**
   * True while `ino`'s local changes are made on the version the hub kept in a conflict copy
   * (`rebase`): they belong there, not over the inode's own version at the hub.
   */
  onCopy(ino: number): boolean {
    return this.bases.get(ino)?.fromCopy === true;
  }

  /** `ino`'s local changes are acknowledged (or gone): it reads the replica's version again. */
  async dropBase(ino: number): Promise<void> {
    if (!this.bases.delete(ino)) return;
    await this.store.transaction(({ db }) => db.prepare('DELETE FROM bridge_bases WHERE ino = ?').run(ino));
  }

  /**
   * `ino`'s local version went to the hub as `copyIno` (a conflict copy, or diverted there) while
   * later local changes are still unacknowledged: they were made on that version, so it becomes
   * the base (the earlier changes' bytes are no longer dirty, and clean cached data may go).
   */
  async rebase(ino: number, copyIno: number): Promise<void> {
    // The replica holds the batch that made the copy: read it now, so the next batch (built at
    // once) reads the new base; the row follows in turn with other transactions.
    const copy = this.versionOf(this.reader, copyIno);
    if (!copy) return;
    // The copy's content and attributes, as `ino`'s: a restart puts the base's inode in the view.
    const v: Version = { inode: { ...copy.inode, ino }, blocks: copy.blocks, fromCopy: true };
    this.bases.set(ino, v);
    await this.store.transaction(({ db }) => this.saveBase(db, ino, v));
  }

  /** `ino`'s committed version, read inside a transaction before anything replaces it. */
  private versionOf(db: Database, ino: number): Version | undefined {
    const row = db.prepare('SELECT * FROM inodes WHERE ino = ?').get(ino) as InodeRow | undefined;
    if (row?.kind !== 'file') return undefined;
    const blocks = db.prepare('SELECT idx, hash FROM blocks WHERE ino = ?').raw().all(ino) as [number, string][];
    return { inode: toInode(row), blocks: new Map(blocks) };
  }

  private saveBase(db: Database, ino: number, v: Version): void {
    db.prepare('INSERT OR REPLACE INTO bridge_bases (ino, inode, blocks, from_copy) VALUES (?, ?, ?, ?)').run(ino, JSON.stringify(v.inode), JSON.stringify([...v.blocks]), v.fromCopy ? 1 : 0);
    this.bases.set(ino, v);
  }

  /** At commit: keeps the versions replaced under files edited locally (asked now: edits made while the chunks were written count). */
  private keepBases(db: Database, before: ReadonlyMap<number, Replaced>): void {
    for (const [ino, { v, removed }] of before) {
      if (this.bases.has(ino) || !this.keepBase?.(ino, removed)) continue;
      this.saveBase(db, ino, v);
    }
  }

  loadInto(view: MemoryMeta): void {
    this.store.loadInto(view);
  }

  /** The whole committed tree, in memory. */
  tree(): MemoryMeta {
    const t = new MemoryMeta();
    this.store.loadInto(t);
    return t;
  }

  /** True while a changefeed event is being applied: the replica may hold it before the view does. */
  get applying(): boolean {
    return this.applyingCount > 0;
  }

  async apply(e: FeedEvent, fetch: ChunkFetcher): Promise<void> {
    this.applyingCount++;
    try {
      await this.applyEvent(e, fetch);
    } finally {
      this.applyingCount--;
    }
  }

  private async applyEvent(e: FeedEvent, fetch: ChunkFetcher): Promise<void> {
    switch (e.kind) {
      case 'reset':
      case 'snapshot-begin':
        this.snapshot = [];
        return;
      case 'snapshot-part':
        this.snapshot?.push(e.part);
        return;
      case 'snapshot-end':
        return this.applySnapshot(e.hubSeq, fetch);
      case 'entry':
        return this.applyEntry(e.entry, fetch);
    }
  }

  /**
   * Inside the transaction: every chunk the tree will name is there. One found present before
   * the fetch may have been dropped since by a space reclaim (it belonged to a dead version);
   * the attempt then fails and is retried, fetching it.
   */
  private requireChunks(db: Database, hashes: readonly string[], fetched: ReadonlyMap<string, Buffer>): void {
    const has = db.prepare('SELECT 1 FROM chunks WHERE hash = ?');
    const gone = hashes.find((h) => !fetched.has(h) && has.get(h) === undefined);
    if (gone !== undefined) throw new AetherError('BRIDGE_PROTOCOL', `chunk ${gone} was reclaimed before the change naming it applied; fetching it again`);
  }

  private async missingChunks(hashes: Iterable<string>, fetch: ChunkFetcher): Promise<Map<string, Buffer>> {
    const want = [...new Set(hashes)].filter((h) => !this.store.hasChunk(h));
    if (want.length === 0) return new Map();
    const got = await fetch(want);
    const lacking = want.filter((h) => !got.has(h));
    if (lacking.length) throw new AetherError('BRIDGE_CHUNKS_GONE', `the hub no longer has ${lacking.length} chunk(s) its changefeed named, e.g. ${lacking[0]}`);
    return got;
  }

  /** Replaces the whole tree with the snapshot, atomically, once all of it has arrived. */
  private async applySnapshot(hubSeq: number, fetch: ChunkFetcher): Promise<void> {
    // Kept until the snapshot is applied: a failed attempt is retried with the same parts.
    const parts = this.snapshot ?? [];
    const blocks = new Map<number, BlockRef[]>();
    for (const p of parts) for (const [ino, idx, hash] of p.blocks) blocks.set(ino, [...(blocks.get(ino) ?? []), [idx, hash]]);
    const named = parts.flatMap((p) => p.blocks.map((b) => b[2]));
    const chunks = await this.missingChunks(named, fetch);
    let maxOwn = 0;
    // The mount's view merges what changed between the tree before and after (no await in between).
    const base = this.onSnapshot ? this.tree() : undefined;
    const before = new Map<number, Replaced>();
    const kept = new Set(parts.flatMap((p) => p.inodes.map((i) => i.ino)));
    await this.store.transaction(({ meta, db }) => {
      this.requireChunks(db, named, chunks);
      for (const ino of this.keepBase ? (db.prepare("SELECT ino FROM inodes WHERE kind = 'file'").pluck().all() as number[]) : []) {
        const removed = !kept.has(ino);
        const v = this.keepBase?.(ino, removed) ? this.versionOf(db, ino) : undefined;
        if (v) before.set(ino, { v, removed });
      }
      db.exec('DELETE FROM blocks; DELETE FROM dentries; DELETE FROM inodes');
      for (const p of parts) {
        for (const i of p.inodes) {
          meta.putInode(i);
          if (this.isOwn(i.ino)) maxOwn = Math.max(maxOwn, i.ino);
        }
        for (const [parent, name, ino] of p.dentries) meta.addEntry(parent, name, ino);
      }
      for (const [ino, b] of blocks) meta.replaceBlocks(ino, b);
      this.setState(db, 'cursor', hubSeq);
      this.setState(db, 'synced', 1);
      this.raiseState(db, 'max_own_ino', maxOwn);
    }, chunks, (db) => {
      this.keepBases(db, before);
      this.mark(db, hubSeq);
    });
    this.snapshot = undefined;
    if (base) this.onSnapshot?.(base, this.tree());
    for (const w of this.syncWaiters.splice(0)) w();
    this.wake(hubSeq);
  }

  private isOwn(ino: number): boolean {
    return ino > this.inoBase && ino < this.inoBase + INO_RANGE;
  }

  private async applyEntry(entry: FeedEntry, fetch: ChunkFetcher): Promise<void> {
    const cursor = this.cursor;
    if (entry.hubSeq <= cursor) return;
    if (entry.hubSeq !== cursor + 1) throw new AetherError('BRIDGE_PROTOCOL', `changefeed gap: the replica is at ${cursor}, the entry is ${entry.hubSeq}`);
    const named = entry.ops.flatMap(({ op }) => (op.t === 'content' ? op.blocks.map((b) => b[1]) : []));
    const chunks = await this.missingChunks(named, fetch);
    const own = entry.mountId === this.mountId;
    let maxOwn = 0;
    const before = new Map<number, Replaced>();
    // This mount's own content that the hub diverted into a conflict copy: for this mount the
    // copy is a file of its own, which its local edits may be on, like any other mount's change.
    const divertedInto = new Set(own ? entry.resolutions.flatMap((r) => (r.kind === 'diverted' ? [r.copyIno] : [])) : []);
    await this.store.transaction(({ meta, db }) => {
      this.requireChunks(db, named, chunks);
      for (const { op } of entry.ops) {
        if (op.t === 'mknode' && this.isOwn(op.ino)) maxOwn = Math.max(maxOwn, op.ino);
        // What a remote change replaces or removes (a file a local edit may be on), and what this
        // mount's own removal removes (a file still open here reads on from it: keepBase decides).
        const replaced = op.t === 'content' ? (own && !divertedInto.has(op.ino) ? undefined : op.ino) : op.t === 'unlink' ? op.ino : op.t === 'rename' && op.dstIno ? op.dstIno : undefined;
        // Captured even when a base is kept now: it may be dropped before this commits.
        if (replaced !== undefined && !before.has(replaced)) {
          const v = this.versionOf(db, replaced);
          if (v) before.set(replaced, { v, removed: op.t !== 'content' });
        }
        // The hub applied these ops to this very state: one failing means the replica diverged.
        if (op.t === 'content') applyContent(meta, op);
        else applyOp(meta, op as Op, { keepOrphans: false });
      }
      // A name removed of a file that keeps another (a hard link) removed nothing: a descriptor
      // open on it reads the file as it is from now on, remote changes included (a base kept for
      // it hid another mount's later write here for good: FUZZ_FDS seed 6348).
      for (const [ino, r] of before) if (r.removed && meta.getInode(ino)) before.set(ino, { ...r, removed: false });
      this.setState(db, 'cursor', entry.hubSeq);
      this.raiseState(db, 'max_own_ino', maxOwn);
      if (own) this.raiseState(db, 'own_journal_seq', entry.journalSeq);
      if (own && entry.resolutions.length > 0) db.prepare('INSERT OR REPLACE INTO bridge_own_resolutions (journal_seq, resolutions) VALUES (?, ?)').run(entry.journalSeq, JSON.stringify(entry.resolutions));
    }, chunks, (db) => {
      this.keepBases(db, before);
      this.mark(db, entry.hubSeq);
    });
    if (!own) this.onRemoteOps?.(entry.ops.map((o) => o.op), entry);
    this.wake(entry.hubSeq);
  }

  private setState(db: Database, key: string, value: number): void {
    db.prepare('INSERT OR REPLACE INTO bridge_state (key, value) VALUES (?, ?)').run(key, value);
  }

  private raiseState(db: Database, key: string, value: number): void {
    db.prepare('INSERT INTO bridge_state (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = max(value, excluded.value)').run(key, value);
  }

  /** The hub's resolutions of this mount's batches up to journal sequence `upTo` the replica holds, by batch (its last sequence). */
  ownResolutions(upTo: number): Map<number, Resolution[]> {
    const rows = this.reader.prepare('SELECT journal_seq, resolutions FROM bridge_own_resolutions WHERE journal_seq <= ? ORDER BY journal_seq').all(upTo) as { journal_seq: number; resolutions: string }[];
    return new Map(rows.map((r) => [r.journal_seq, JSON.parse(r.resolutions) as Resolution[]]));
  }

  /** The drain acted on the resolutions of batches up to `upTo` (after the journal commit). */
  async dropOwnResolutions(upTo: number): Promise<void> {
    await this.store.transaction(({ db }) => db.prepare('DELETE FROM bridge_own_resolutions WHERE journal_seq <= ?').run(upTo));
  }

  /** Records that the hub acknowledged this mount's journal up to `seq` with no changefeed entry (every op skipped). */
  async noteOwnJournalSeq(seq: number): Promise<void> {
    await this.store.transaction(({ db }) => this.raiseState(db, 'own_journal_seq', seq));
  }

  close(): void {
    for (const w of this.waiters.splice(0)) w.resolve();
    for (const w of this.syncWaiters.splice(0)) w();
    this.reader.close();
    this.store.close();
  }
}
