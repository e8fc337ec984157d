import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { AetherError } from '../errors.js';
import { applyOp, TreeError } from '../tree/apply.js';
import type { Inode } from '../tree/inode.js';
import { MemoryMeta } from '../tree/meta.js';
import { ROOT_INO, type Ino, type Op } from '../tree/ops.js';
import { ChunkStore, type ReclaimResult } from './chunks.js';
import { MIGRATIONS } from './migrations.js';
import { BLOCK_BYTES, SqliteMeta, toInode, type InodeRow } from './sqlite-meta.js';

export interface SequencedOp {
  seq: number;
  op: Op;
}

/** What applying one batch of journal entries did. */
export interface BatchResult {
  applied: number;
  rejected: { seq: number; error: string }[];
  /** Chunks whose stored copy was damaged or gone, stored again from this batch's data (ChunkStore.putMany). */
  restored: string[];
}

/**
 * Tables a user of the store keeps in the same database, so that its rows commit atomically with
 * the tree (the hub's changefeed and mount table). Its migrations are numbered by the `meta` row
 * `schema:<name>`, independently of the store's own.
 */
export interface StoreExtension {
  name: string;
  migrations: readonly string[];
  /** A SELECT of the chunk hashes the extension's tables still need (kept by the space reclaim). */
  liveChunks?: string;
}

/** What `Store.transaction` hands its work: the tree, and the database for an extension's tables. */
export interface StoreTx {
  readonly meta: SqliteMeta;
  readonly db: Database.Database;
}

export interface StoreOpenOptions {
  rootOwner?: { uid: number; gid: number };
  extensions?: readonly StoreExtension[];
}

/**
 * The committed tree: metadata in SQLite, contents as content-addressed chunks. Local mode embeds
 * it and drains the journal into it; the hub runs the same code. Batches are atomic and
 * idempotent: ops at or below the applied sequence are skipped, so a re-sent batch is harmless.
 */
export class Store {
  private readonly db: Database.Database;
  /**
   * A second connection for reads: it sees only committed batches, so a read that runs while a
   * batch waits for its chunks to reach the disk never sees blocks whose chunks are not there yet.
   */
  private readonly reader: Database.Database;
  readonly chunks: ChunkStore;
  private applying: Promise<unknown> = Promise.resolve();
  /** The reader's statements, prepared once (reads run on every FUSE read that misses the cache). */
  private readonly readerStatements = new Map<string, Database.Statement>();

  private constructor(readonly dir: string, rootOwner: { uid: number; gid: number }, extensions: readonly StoreExtension[]) {
    mkdirSync(dir, { recursive: true });
    this.db = new Database(join(dir, 'meta.sqlite'));
    // WAL with synchronous=FULL: a committed batch survives power loss before the journal releases it.
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.migrate();
    for (const ext of extensions) this.migrateExtension(ext);
    this.chunks = new ChunkStore(join(dir, 'packs'), this.db, extensions.flatMap((e) => (e.liveChunks ? [e.liveChunks] : [])));
    if (!new SqliteMeta(this.db, this.chunks).getInode(ROOT_INO)) this.createRoot(rootOwner);
    this.reader = new Database(join(dir, 'meta.sqlite'), { readonly: true });
  }

  private query(sql: string): Database.Statement {
    let st = this.readerStatements.get(sql);
    if (!st) this.readerStatements.set(sql, (st = this.reader.prepare(sql)));
    return st;
  }

  static open(dir: string, rootOwner?: { uid: number; gid: number }, opts: StoreOpenOptions = {}): Store {
    const owner = rootOwner ?? opts.rootOwner ?? { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
    return new Store(dir, owner, opts.extensions ?? []);
  }

  private migrateExtension(ext: StoreExtension): void {
    const key = `schema:${ext.name}`;
    const version = this.getMeta(key);
    if (version > ext.migrations.length) throw new AetherError('STORE_CORRUPT', `store ${this.dir} has ${ext.name} schema version ${version}, newer than this Aether (${ext.migrations.length})`);
    for (let v = version; v < ext.migrations.length; v++) {
      this.db.transaction(() => {
        this.db.exec(ext.migrations[v] as string);
        this.setMeta(key, v + 1);
      })();
    }
  }

  private migrate(): void {
    const version = this.db.pragma('user_version', { simple: true }) as number;
    if (version > MIGRATIONS.length) throw new AetherError('STORE_CORRUPT', `store ${this.dir} has schema version ${version}, newer than this Aether (${MIGRATIONS.length})`);
    for (let v = version; v < MIGRATIONS.length; v++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[v] as string);
        this.db.pragma(`user_version = ${v + 1}`);
      })();
    }
  }

  private createRoot(owner: { uid: number; gid: number }): void {
    const now = Date.now();
    const meta = new SqliteMeta(this.db, this.chunks);
    meta.putInode({ ino: ROOT_INO, kind: 'dir', mode: 0o755, uid: owner.uid, gid: owner.gid, size: 0, nlink: 2, atimeMs: now, mtimeMs: now, ctimeMs: now });
    meta.finish();
    this.setMeta('max_ino', ROOT_INO);
  }

  private getMeta(key: string): number {
    return (this.db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: number } | undefined)?.value ?? 0;
  }

  private setMeta(key: string, value: number): void {
    this.db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)').run(key, value);
  }

  /** Highest journal sequence applied; ops at or below it are skipped. */
  get appliedSeq(): number {
    return this.getMeta('applied_seq');
  }

  /** Highest inode number ever created, so numbers are never reused. */
  get maxIno(): number {
    return this.getMeta('max_ino');
  }

  /**
   * Applies ops in order as one atomic, durable batch. An op that fails its POSIX checks is
   * skipped (the mount validated it against its own view; the store can only have diverged
   * through a bug, and one bad op must not wedge every later one); its error is returned. The
   * chunks a batch creates are written and fsynced off the event loop before the commit, so the
   * committed metadata never names a chunk that is not on disk. Batches run one at a time.
   * An op's data must not change until the returned promise settles: a write that covers a whole
   * block is stored from it, not from a copy (SqliteMeta).
   */
  applyBatch(batch: readonly SequencedOp[]): Promise<BatchResult> {
    const run = this.applying.then(() => this.applyNow(batch));
    this.applying = run.catch(() => undefined);
    return run;
  }

  private async applyNow(batch: readonly SequencedOp[]): Promise<BatchResult> {
    const rejected: { seq: number; error: string }[] = [];
    let applied = 0;
    this.db.exec('BEGIN IMMEDIATE');
    try {
      const meta = new SqliteMeta(this.db, this.chunks);
      let last = this.appliedSeq;
      let maxIno = this.maxIno;
      for (const { seq, op } of batch) {
        if (seq <= last) continue;
        try {
          applyOp(meta, op, { keepOrphans: true });
          applied++;
          if (op.t === 'mknode' && op.ino > maxIno) maxIno = op.ino;
        } catch (err) {
          // Only the op's own refusal skips it: a store that cannot read a chunk or write a row
          // fails the batch, which rolls back and is retried, instead of dropping the op.
          if (!(err instanceof TreeError)) throw err;
          rejected.push({ seq, error: err.message });
        }
        last = seq;
      }
      const chunks = meta.finish();
      this.setMeta('applied_seq', last);
      this.setMeta('max_ino', maxIno);
      const { restored } = await this.chunks.putMany(chunks);
      this.db.exec('COMMIT');
      return { applied, rejected, restored };
    } catch (err) {
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
      throw err;
    }
  }

  /**
   * Runs `work` as one atomic, durable transaction, in turn with every other batch: `work` runs
   * synchronously inside BEGIN IMMEDIATE; then the chunks it names (`chunks`, plus blocks it wrote
   * through `meta`) are appended and fsynced, and only then does the transaction commit. If
   * anything throws, nothing of it remains. This is what the hub commits a mount's batch with.
   * The data of ops applied through `meta` must not change until the promise settles (as above).
   * `atCommit` runs synchronously right before COMMIT, after the wait for the chunks: rows that must
   * describe the moment the transaction becomes visible.
   */
  transaction<T>(work: (tx: StoreTx) => T, chunks: ReadonlyMap<string, Buffer> = new Map(), atCommit?: (db: Database.Database) => void): Promise<T> {
    const run = this.applying.then(() => this.transactNow(work, chunks, atCommit));
    this.applying = run.catch(() => undefined);
    return run;
  }

  private async transactNow<T>(work: (tx: StoreTx) => T, chunks: ReadonlyMap<string, Buffer>, atCommit?: (db: Database.Database) => void): Promise<T> {
    this.db.exec('BEGIN IMMEDIATE');
    try {
      const meta = new SqliteMeta(this.db, this.chunks);
      const result = work({ meta, db: this.db });
      const touched = meta.finish();
      for (const [hash, data] of chunks) touched.set(hash, data);
      await this.chunks.putMany(touched);
      atCommit?.(this.db);
      this.db.exec('COMMIT');
      return result;
    } catch (err) {
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
      throw err;
    }
  }

  /**
   * A new read-only connection: it sees committed transactions only, and one held inside BEGIN
   * sees a single consistent state however long it reads (a snapshot streamed to a client).
   * The caller closes it.
   */
  openReader(): Database.Database {
    return new Database(join(this.dir, 'meta.sqlite'), { readonly: true });
  }

  /** True when a committed batch stored the chunk `hash` (reader connection). */
  hasChunk(hash: string): boolean {
    return this.query('SELECT 1 FROM chunks WHERE hash = ?').get(hash) !== undefined;
  }

  /** The committed block map of `ino` (reader connection), ascending by index. */
  blocksOf(ino: Ino): [number, string][] {
    return (this.query('SELECT idx, hash FROM blocks WHERE ino = ? ORDER BY idx').all(ino) as { idx: number; hash: string }[]).map((r) => [r.idx, r.hash]);
  }

  /** The committed inode (reader connection). */
  getInode(ino: Ino): Inode | undefined {
    const r = this.query('SELECT * FROM inodes WHERE ino = ?').get(ino) as InodeRow | undefined;
    return r ? toInode(r) : undefined;
  }

  /** Reads committed file content; holes and bytes past a block's stored length read as zeros. */
  read(ino: Ino, offset: number, length: number): Buffer {
    const out = Buffer.alloc(Math.max(0, length));
    return out.subarray(0, this.readInto(ino, offset, length, out, 0));
  }

  /**
   * Copies the committed bytes of [offset, offset + length) into `target` at `at`, straight from
   * the packs: holes as zeros, nothing past the end of the file. Returns how many bytes that is.
   */
  readInto(ino: Ino, offset: number, length: number, target: Buffer, at: number): number {
    const inode = this.getInode(ino);
    if (!inode) return 0;
    const end = Math.min(inode.size, offset + length);
    if (end <= offset) return 0;
    target.fill(0, at, at + end - offset);
    const rows = this.query('SELECT idx, hash FROM blocks WHERE ino = ? AND idx >= ? AND idx <= ?').all(ino, Math.floor(offset / BLOCK_BYTES), Math.floor((end - 1) / BLOCK_BYTES)) as { idx: number; hash: string }[];
    for (const { idx, hash } of rows) {
      const blockStart = idx * BLOCK_BYTES;
      const from = Math.max(offset, blockStart);
      this.chunks.readUpTo(hash, target, at + from - offset, from - blockStart, end - from);
    }
    return end - offset;
  }

  /**
   * Deletes inodes left with no name (open-but-unlinked at a crash) and their content, except
   * those in `keep`: journal entries not yet applied still write to them, and must find them.
   */
  purgeOrphans(keep: ReadonlySet<Ino> = new Set()): Ino[] {
    const orphans = (this.db.prepare('SELECT ino FROM inodes WHERE nlink = 0').all() as { ino: number }[]).map((r) => r.ino).filter((ino) => !keep.has(ino));
    this.db.transaction(() => {
      for (const ino of orphans) {
        this.db.prepare('DELETE FROM blocks WHERE ino = ?').run(ino);
        this.db.prepare('DELETE FROM inodes WHERE ino = ?').run(ino);
      }
    })();
    return orphans;
  }

  /** Forgets chunks no block refers to and deletes packs left empty. */
  collectChunks(): number {
    return this.chunks.collect();
  }

  /** Gives back the space of deleted and overwritten data (ChunkStore.reclaim), in turn with batches. */
  reclaimSpace(copyBudgetBytes: number): Promise<ReclaimResult> {
    const run = this.applying.then(() => this.chunks.reclaim(copyBudgetBytes));
    this.applying = run.catch(() => undefined);
    return run;
  }

  /** Loads the whole committed tree into memory (the mount's starting view). */
  loadInto(mem: MemoryMeta): void {
    for (const r of this.db.prepare('SELECT * FROM inodes').iterate() as IterableIterator<InodeRow>) mem.putInode(toInode(r));
    for (const d of this.db.prepare('SELECT parent, name, ino FROM dentries').iterate() as IterableIterator<{ parent: number; name: string; ino: number }>) {
      mem.addEntry(d.parent, d.name, d.ino);
    }
    // Which blocks hold data, so that sparse files report few blocks (st_blocks).
    for (const [ino, idx] of this.db.prepare('SELECT ino, idx FROM blocks').raw().iterate() as IterableIterator<[number, number]>) {
      mem.markAllocated(ino, idx * BLOCK_BYTES, BLOCK_BYTES);
    }
  }

  close(): void {
    this.chunks.close();
    this.reader.close();
    this.db.close();
  }
}
