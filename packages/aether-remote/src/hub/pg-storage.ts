import pg from 'pg';
import type { CustomTypesConfig, PoolClient } from 'pg';
import { AetherError } from '@aether/core/errors';
import { toInode, type InodeRow } from '@aether/core/store/sqlite-meta';
import type { BlockRef } from '@aether/core/tree/content';
import { chunksFor, commitBatch, namedChunks, type CommitOutcome, type CommitRequest } from './commit.js';
import { HubImage, isEmptyDelta, type RowDelta } from './hub-image.js';
import { redactUrl } from './options.js';
import { PgCommitTables } from './pg-commit-tables.js';
import { replaceRows, sqlLiteral, type Cols } from './pg-sql.js';
import { migratePg } from './pg-schema.js';
import { MOUNT_NO_MAX } from './schema.js';
import type { ChunkReclaim, FeedPage, HubStorage, SnapshotReader } from './storage.js';
import type { HubStateRow, MountRow, TombstoneRow } from './tables.js';

/** bigint columns come back as JavaScript numbers: every value Aether stores is a safe integer. */
const INT8_OID = 20;
const TYPES: CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => (oid === INT8_OID ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format))) as CustomTypesConfig['getTypeParser'],
};

const CHANNEL = 'aether_feed';
/** The connections' application_name, as pg_stat_activity shows them. */
export const POOL_APPLICATION = 'aether-hub';
export const LISTEN_APPLICATION = 'aether-hub-listen';
/** Chunks per INSERT: each is a binary parameter, so data is never hex-encoded into the query text. */
const CHUNKS_PER_INSERT = 64;
const POOL_MAX = 16;
/** A hub session idle inside a transaction this long is ended by the server (its locks go with it). */
export const IDLE_IN_TRANSACTION_MS = 15_000;
const RELISTEN_MS = 1000;

const INODE_COLS: Cols = [['ino', 'bigint'], ['kind', 'text'], ['mode', 'integer'], ['uid', 'bigint'], ['gid', 'bigint'], ['size', 'bigint'], ['nlink', 'integer'], ['atime_ms', 'float8'], ['mtime_ms', 'float8'], ['ctime_ms', 'float8'], ['target', 'text']];
const DENTRY_COLS: Cols = [['parent', 'bigint'], ['name', 'text'], ['ino', 'bigint']];
const BLOCK_COLS: Cols = [['ino', 'bigint'], ['idx', 'bigint'], ['hash', 'text']];
const VERSION_COLS: Cols = [['ino', 'bigint'], ['content_seq', 'bigint'], ['content_mount', 'text']];
const TOMBSTONE_COLS: Cols = [['ino', 'bigint'], ['parent', 'bigint'], ['name', 'text'], ['mode', 'integer'], ['uid', 'bigint'], ['gid', 'bigint'], ['deleted_seq', 'bigint'], ['deleted_by', 'text']];
const DIVERT_COLS: Cols = [['mount_id', 'text'], ['ino', 'bigint'], ['copy_ino', 'bigint'], ['hub_seq', 'bigint']];


/**
 * The PostgreSQL store (POSTGRES.md): several hub processes on one database serve one tree. A
 * commit locks the hub_state row (which serialises commits across hubs and makes hub sequences
 * gap-free in commit order), catches this hub's in-memory image up with the rows other hubs
 * changed, runs the same rules as the embedded store on the image, writes the rows it changed,
 * the feed entry and the mount's applied sequence, and NOTIFYs; every hub LISTENs and wakes its
 * followers.
 */
export class PgHubStorage implements HubStorage {
  readonly kind = 'postgres';
  private seq: number;
  private image: HubImage | undefined;
  private committing: Promise<unknown> = Promise.resolve();
  private listener: pg.Client | undefined;
  private relistenTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly remoteCommit: ((hubSeq: number) => void)[] = [];

  private constructor(
    private readonly url: string,
    private readonly pool: pg.Pool,
    readonly hubId: string,
    image: HubImage,
    private readonly log: (line: string) => void,
  ) {
    this.image = image;
    this.seq = image.seq;
  }

  /** Connects, migrates, loads the image and starts listening; a database it cannot use is HUB_STORE_FAILED. */
  static async open(url: string, opts: { log: (line: string) => void; rootOwner?: { uid: number; gid: number } }): Promise<PgHubStorage> {
    const where = redactUrl(url);
    const pool = new pg.Pool({
      connectionString: url,
      types: TYPES,
      max: POOL_MAX,
      connectionTimeoutMillis: 10_000,
      application_name: POOL_APPLICATION,
      // A hub stopped or cut off inside a commit holds the hub_state row lock, and every hub's
      // commits waited for it for good (a review: SIGSTOP of one hub). The server ends such a
      // session: a commit leaves the transaction idle only while JavaScript applies the batch.
      idle_in_transaction_session_timeout: IDLE_IN_TRANSACTION_MS,
      // A peer gone without a word (a host off the network) is found by TCP instead of never.
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
    });
    // An idle connection that breaks (the server restarted) must not take the hub down: the next query reconnects.
    pool.on('error', (err) => opts.log(`PostgreSQL connection lost: ${err.message}`));
    // Nor one in use (a session terminated during a commit): node-postgres emits the error on the
    // checked-out client, where nothing listened, and the process died. The query in flight fails.
    pool.on('connect', (client) => client.on('error', (err) => opts.log(`PostgreSQL connection lost in use: ${err.message}`)));
    let storage: PgHubStorage | undefined;
    try {
      const c = await pool.connect();
      try {
        await migratePg(c, opts.rootOwner ?? { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 }, Date.now());
        // A role that may read but not write passed the start and then failed every request (a review).
        await c.query('BEGIN; SELECT 1 FROM hub_state WHERE id = 1 FOR UPDATE; ROLLBACK').catch(async (err: unknown) => {
          await c.query('ROLLBACK').catch(() => undefined);
          throw new AetherError('HUB_STORE_FAILED', `cannot use the hub store ${where}: the hub may not write to it (${err instanceof Error ? err.message : String(err)})`, { cause: err });
        });
        await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
        const state = (await c.query<HubStateRow>('SELECT hub_id, hub_seq, feed_floor, next_ino FROM hub_state WHERE id = 1')).rows[0]!;
        const image = await loadImage(c, state.hub_seq);
        await c.query('COMMIT');
        storage = new PgHubStorage(url, pool, state.hub_id, image, opts.log);
      } finally {
        c.release();
      }
      await storage.listen();
      return storage;
    } catch (err) {
      await storage?.close().catch(() => undefined);
      if (!storage) await pool.end().catch(() => undefined);
      if (err instanceof AetherError) throw err;
      throw new AetherError('HUB_STORE_FAILED', `cannot use the hub store ${where}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  }

  get where(): string {
    return redactUrl(this.url);
  }

  get hubSeq(): number {
    return this.seq;
  }

  onRemoteCommit(fn: (hubSeq: number) => void): void {
    this.remoteCommit.push(fn);
  }

  /** A newer hub sequence committed elsewhere: followers of this hub are woken. */
  private heard(seq: number): void {
    if (!(seq > this.seq)) return;
    this.seq = seq;
    for (const fn of this.remoteCommit) fn(seq);
  }

  private async listen(): Promise<void> {
    const client = new pg.Client({ connectionString: this.url, types: TYPES, application_name: LISTEN_APPLICATION });
    client.on('notification', (m) => this.heard(Number(m.payload)));
    const lost = (why: string): void => {
      if (this.listener !== client) return;
      this.listener = undefined;
      if (!this.closed) this.log(`PostgreSQL LISTEN connection lost (${why}); reconnecting`);
      this.relisten();
    };
    client.on('error', (err) => lost(err.message));
    client.on('end', () => lost('closed'));
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANNEL}`);
    } catch (err) {
      // Connected but LISTEN refused (a database starting up): one connection leaked per retry.
      await client.end().catch(() => undefined);
      throw err;
    }
    this.listener = client;
  }

  /** Listens again after a pause; commits it may have missed meanwhile are caught by re-reading the sequence. */
  private relisten(): void {
    if (this.closed || this.relistenTimer) return;
    this.relistenTimer = setTimeout(() => {
      this.relistenTimer = undefined;
      if (this.closed) return;
      this.listen()
        .then(() => {
          this.log('PostgreSQL LISTEN connection back; catching up with commits made meanwhile');
          return this.refreshSeq();
        })
        .catch((err: unknown) => {
          this.log(`PostgreSQL LISTEN: ${err instanceof Error ? err.message : String(err)}; retrying`);
          this.relisten();
        });
    }, RELISTEN_MS);
    this.relistenTimer.unref();
  }

  async refreshSeq(): Promise<number> {
    const r = await this.pool.query<{ hub_seq: number }>('SELECT hub_seq FROM hub_state WHERE id = 1');
    this.heard(r.rows[0]!.hub_seq);
    return this.seq;
  }

  async register(mountId: string, nowMs: number): Promise<MountRow> {
    const select = 'SELECT mount_id, mount_no, applied_seq FROM hub_mounts WHERE mount_id = $1';
    const known = (await this.pool.query<MountRow>(select, [mountId])).rows[0];
    if (known) return known;
    return this.inTransaction(async (c) => {
      // The hub_state lock: mount numbers are handed out one at a time across hubs too.
      await c.query('SELECT 1 FROM hub_state WHERE id = 1 FOR UPDATE');
      const again = (await c.query<MountRow>(select, [mountId])).rows[0];
      if (again) return again;
      const max = (await c.query<{ n: number }>('SELECT COALESCE(MAX(mount_no), 0)::bigint AS n FROM hub_mounts')).rows[0]!.n;
      if (max >= MOUNT_NO_MAX) throw new AetherError('STORE_CORRUPT', `the hub has handed out all ${MOUNT_NO_MAX} mount numbers`);
      await c.query('INSERT INTO hub_mounts (mount_id, mount_no, applied_seq, first_seen_ms) VALUES ($1, $2, 0, $3)', [mountId, max + 1, nowMs]);
      return { mount_id: mountId, mount_no: max + 1, applied_seq: 0 };
    });
  }

  private async inTransaction<T>(work: (c: PoolClient) => Promise<T>): Promise<T> {
    const c = await this.pool.connect();
    try {
      await c.query('BEGIN');
      const result = await work(c);
      await c.query('COMMIT');
      return result;
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      c.release();
    }
  }

  async missingChunks(hashes: readonly string[]): Promise<string[]> {
    if (hashes.length === 0) return [];
    const have = new Set((await this.pool.query<{ hash: string }>('SELECT hash FROM chunks WHERE hash = ANY($1::text[])', [hashes])).rows.map((r) => r.hash));
    return hashes.filter((h) => !have.has(h));
  }

  async readChunk(hash: string): Promise<Buffer | undefined> {
    return (await this.pool.query<{ data: Buffer }>('SELECT data FROM chunks WHERE hash = $1', [hash])).rows[0]?.data;
  }

  async countChunks(): Promise<number> {
    return (await this.pool.query<{ n: number }>('SELECT COUNT(*)::bigint AS n FROM chunks')).rows[0]!.n;
  }

  commit(req: CommitRequest): Promise<CommitOutcome> {
    // One commit at a time in this process: the image is shared; across hubs the row lock orders them.
    const run = this.committing.then(() => this.commitNow(req));
    this.committing = run.catch(() => undefined);
    return run;
  }

  private async commitNow(req: CommitRequest): Promise<CommitOutcome> {
    const c = await this.pool.connect();
    let delta: RowDelta | undefined;
    let image: HubImage | undefined;
    try {
      // One round trip: the lock that orders commits across hubs and the state, then the mount's
      // rows in a statement of their own. READ COMMITTED gives each statement its own snapshot:
      // joined to the locking one, they were read from before the wait for the lock, and a batch
      // another hub committed meanwhile was committed again (a review saw it 11 times in 15).
      const [, locked, mountRows] = (await c.query(
        `BEGIN; SELECT hub_id, hub_seq, feed_floor, next_ino FROM hub_state WHERE id = 1 FOR UPDATE;
         SELECT m.mount_id, m.mount_no, m.applied_seq, r.resolutions AS held FROM (SELECT 1) AS one
           LEFT JOIN hub_mounts m ON m.mount_id = ${sqlLiteral(req.mountId)}
           LEFT JOIN hub_held_resolutions r ON r.mount_id = ${sqlLiteral(req.mountId)}`,
      )) as unknown as [unknown, pg.QueryResult<HubStateRow>, pg.QueryResult<Partial<MountRow> & { held: string | null }>];
      const state = locked.rows[0]!;
      const row = mountRows.rows[0]!;
      const mount: MountRow | undefined = row.mount_id ? { mount_id: row.mount_id, mount_no: row.mount_no!, applied_seq: row.applied_seq! } : undefined;
      image = await this.catchUp(c, state);
      const unstaged = namedChunks(req.batch).filter((h) => !req.staged.has(h));
      const present = unstaged.length === 0 ? [] : (await c.query<{ hash: string }>('SELECT hash FROM chunks WHERE hash = ANY($1::text[])', [unstaged])).rows.map((r) => r.hash);
      const tables = new PgCommitTables(image, state, mount, new Set(present), row.held ?? null);
      image.record();
      let outcome: CommitOutcome;
      try {
        outcome = commitBatch(image, tables, req);
      } finally {
        delta = image.takeChanges();
      }
      if (outcome.duplicate) {
        await c.query('COMMIT');
        return outcome;
      }
      await this.writeChunks(c, chunksFor(req.batch, req.staged));
      const statements = [...rowWrites(delta), ...tables.writes(JSON.stringify(delta))];
      // A chunk named again is no longer dying: unnamed later, its grace starts over.
      const named = namedChunks(req.batch);
      if (named.length > 0) statements.push(`DELETE FROM hub_dying WHERE hash IN (${named.map(sqlLiteral).join(', ')})`);
      // Delivered to every listening hub when the transaction commits, never before.
      if (outcome.hubSeq !== null) statements.push(`SELECT pg_notify('${CHANNEL}', '${outcome.hubSeq}')`);
      statements.push('COMMIT');
      await c.query(statements.join(';\n'));
      if (outcome.hubSeq !== null) {
        image.seq = outcome.hubSeq;
        this.seq = Math.max(this.seq, outcome.hubSeq);
      }
      return outcome;
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      // The image took changes the database did not: the next commit reloads it.
      if (delta && !isEmptyDelta(delta)) this.image = undefined;
      throw err;
    } finally {
      c.release();
    }
  }

  /** The image at the locked hub sequence: other hubs' commits applied from the feed, or everything reloaded once the feed no longer holds them. */
  private async catchUp(c: PoolClient, state: HubStateRow): Promise<HubImage> {
    let image = this.image;
    if (image && image.seq === state.hub_seq) return image;
    if (!image || image.seq < state.feed_floor || image.seq > state.hub_seq) {
      image = await loadImage(c, state.hub_seq);
    } else {
      const rows = (await c.query<{ changes: string }>('SELECT changes FROM hub_feed WHERE hub_seq > $1 ORDER BY hub_seq', [image.seq])).rows;
      for (const r of rows) image.applyDelta(JSON.parse(r.changes) as RowDelta);
      image.seq = state.hub_seq;
    }
    this.image = image;
    return image;
  }

  /**
   * Under the commit lock (a commit checks which chunks the hub has before naming them without an
   * upload): chunks named by neither the tree nor a retained entry are noted, those noted before
   * `graceMs` ago deleted. PostgreSQL gives the rows' space back at its next VACUUM.
   */
  async reclaimChunks(nowMs: number, graceMs: number): Promise<ChunkReclaim> {
    const c = await this.pool.connect();
    try {
      await c.query('BEGIN; SELECT 1 FROM hub_state WHERE id = 1 FOR UPDATE');
      await c.query(
        `CREATE TEMP TABLE hub_referenced ON COMMIT DROP AS
           SELECT hash FROM blocks
           UNION SELECT b->>1 FROM hub_feed, jsonb_array_elements(hub_feed.entry::jsonb->'ops') AS o,
             jsonb_array_elements(CASE WHEN jsonb_typeof(o->'op'->'blocks') = 'array' THEN o->'op'->'blocks' ELSE '[]'::jsonb END) AS b`,
      );
      await c.query('DELETE FROM hub_dying d WHERE d.hash IN (SELECT hash FROM hub_referenced) OR NOT EXISTS (SELECT 1 FROM chunks WHERE chunks.hash = d.hash)');
      // NOT EXISTS, not NOT IN: PostgreSQL runs NOT IN over a subquery bigger than work_mem as a
      // rescan per row (hours on a big store, under the commit lock; found by a review).
      await c.query('INSERT INTO hub_dying (hash, since_ms) SELECT hash, $1 FROM chunks WHERE NOT EXISTS (SELECT 1 FROM hub_referenced r WHERE r.hash = chunks.hash) ON CONFLICT DO NOTHING', [nowMs]);
      const cutoff = nowMs - graceMs;
      const gone = await c.query<{ n: string; bytes: string }>(
        'WITH gone AS (DELETE FROM chunks USING hub_dying d WHERE chunks.hash = d.hash AND d.since_ms <= $1 RETURNING length(chunks.data) AS len) SELECT COUNT(*) AS n, COALESCE(SUM(len), 0) AS bytes FROM gone',
        [cutoff],
      );
      await c.query('DELETE FROM hub_dying WHERE since_ms <= $1', [cutoff]);
      const dying = await c.query<{ n: string }>('SELECT COUNT(*) AS n FROM hub_dying');
      await c.query('COMMIT');
      return { dropped: Number(gone.rows[0]!.n), freedBytes: Number(gone.rows[0]!.bytes), dying: Number(dying.rows[0]!.n) };
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      c.release();
    }
  }

  private async writeChunks(c: PoolClient, chunks: ReadonlyMap<string, Buffer>): Promise<void> {
    const all = [...chunks];
    for (let i = 0; i < all.length; i += CHUNKS_PER_INSERT) {
      const part = all.slice(i, i + CHUNKS_PER_INSERT);
      const values = part.map((_, j) => `($${2 * j + 1}, $${2 * j + 2})`).join(', ');
      await c.query(`INSERT INTO chunks (hash, data) VALUES ${values} ON CONFLICT (hash) DO NOTHING`, part.flat());
    }
  }

  async feedPage(after: number, limit: number): Promise<FeedPage> {
    // One statement reads one snapshot: the floor and the rows can never disagree.
    const r = await this.pool.query<{ feed_floor: number; hub_seq: number | null; entry: string | null }>(
      `SELECT s.feed_floor, f.hub_seq, f.entry FROM hub_state s
         LEFT JOIN LATERAL (SELECT hub_seq, entry FROM hub_feed WHERE hub_seq > $1 ORDER BY hub_seq LIMIT $2) f ON true
       WHERE s.id = 1 ORDER BY f.hub_seq`,
      [after, limit],
    );
    const rows = r.rows.flatMap((x) => (x.hub_seq === null || x.entry === null ? [] : [{ hub_seq: x.hub_seq, entry: x.entry }]));
    return { floor: r.rows[0]!.feed_floor, rows };
  }

  async openSnapshot(): Promise<SnapshotReader> {
    const c = await this.pool.connect();
    try {
      await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      const hubSeq = (await c.query<{ hub_seq: number }>('SELECT hub_seq FROM hub_state WHERE id = 1')).rows[0]!.hub_seq;
      const raw = async <T>(text: string, values: unknown[]): Promise<T[]> => (await c.query<T extends unknown[] ? T : never>({ text, values, rowMode: 'array' })).rows as T[];
      return {
        hubSeq,
        inodes: async (after, limit) => (await c.query<InodeRow>('SELECT * FROM inodes WHERE ino > $1 ORDER BY ino LIMIT $2', [after, limit])).rows.map(toInode),
        dentries: (after, limit) => raw<[number, string, number]>('SELECT parent, name, ino FROM dentries WHERE (parent, name) > ($1, $2) ORDER BY parent, name LIMIT $3', [after[0], after[1], limit]),
        blocks: (after, limit) => raw<[number, number, string]>('SELECT ino, idx, hash FROM blocks WHERE (ino, idx) > ($1, $2) ORDER BY ino, idx LIMIT $3', [after[0], after[1], limit]),
        close: async () => {
          await c.query('COMMIT').catch(() => undefined);
          c.release();
        },
      };
    } catch (err) {
      c.release();
      throw err;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.relistenTimer);
    await this.committing;
    const listener = this.listener;
    this.listener = undefined;
    await listener?.end().catch(() => undefined);
    await this.pool.end();
  }
}

/** The whole committed tree and rule rows, as of hub sequence `seq` (read inside the caller's transaction). */
async function loadImage(c: PoolClient, seq: number): Promise<HubImage> {
  const image = new HubImage();
  image.seq = seq;
  for (const r of (await c.query<InodeRow>('SELECT * FROM inodes')).rows) image.loadInode(r.ino, toInode(r));
  for (const r of (await c.query<{ parent: number; name: string; ino: number }>('SELECT parent, name, ino FROM dentries')).rows) image.loadEntry(r.parent, r.name, r.ino);
  for (const [ino, blocks] of groupBlocks((await c.query<{ ino: number; idx: number; hash: string }>('SELECT ino, idx, hash FROM blocks ORDER BY ino, idx')).rows)) image.loadBlocks(ino, blocks);
  for (const r of (await c.query<{ ino: number; content_seq: number; content_mount: string }>('SELECT * FROM hub_versions')).rows) image.loadVersion(r.ino, { content_seq: r.content_seq, content_mount: r.content_mount });
  for (const r of (await c.query<TombstoneRow>('SELECT * FROM hub_tombstones')).rows) image.loadTombstone(r.ino, r);
  for (const r of (await c.query<{ mount_id: string; ino: number; copy_ino: number; hub_seq: number }>('SELECT * FROM hub_diverts')).rows) image.loadDivert(r.mount_id, r.ino, { copy_ino: r.copy_ino, hub_seq: r.hub_seq });
  return image;
}

function groupBlocks(rows: readonly { ino: number; idx: number; hash: string }[]): Map<number, BlockRef[]> {
  const out = new Map<number, BlockRef[]>();
  for (const r of rows) {
    const list = out.get(r.ino);
    if (list) list.push([r.idx, r.hash]);
    else out.set(r.ino, [[r.idx, r.hash]]);
  }
  return out;
}

/** The statements that write the rows a commit changed. */
function rowWrites(d: RowDelta): string[] {
  const ino = (ino: number): number[] => [ino];
  return [
    ...replaceRows('inodes', INODE_COLS, 1, d.i.map(([i]) => ino(i)), d.i.flatMap(([, i]) => (i ? [[i.ino, i.kind, i.mode, i.uid, i.gid, i.size, i.nlink, i.atimeMs, i.mtimeMs, i.ctimeMs, i.target ?? null]] : []))),
    ...replaceRows('blocks', BLOCK_COLS, 1, d.b.map(([i]) => ino(i)), d.b.flatMap(([i, blocks]) => blocks.map(([idx, hash]) => [i, idx, hash]))),
    ...replaceRows('dentries', DENTRY_COLS, 2, d.d.map(([parent, name]) => [parent, name]), d.d.flatMap(([parent, name, i]) => (i === null ? [] : [[parent, name, i]]))),
    ...replaceRows('hub_versions', VERSION_COLS, 1, d.v.map(([i]) => ino(i)), d.v.flatMap(([i, v]) => (v ? [[i, v.content_seq, v.content_mount]] : []))),
    ...replaceRows('hub_tombstones', TOMBSTONE_COLS, 1, d.t.map(([i]) => ino(i)), d.t.flatMap(([, t]) => (t ? [[t.ino, t.parent, t.name, t.mode, t.uid, t.gid, t.deleted_seq, t.deleted_by]] : []))),
    ...replaceRows('hub_diverts', DIVERT_COLS, 2, d.x.map(([m, i]) => [m, i]), d.x.flatMap(([m, i, x]) => (x ? [[m, i, x.copy_ino, x.hub_seq]] : []))),
  ];
}
