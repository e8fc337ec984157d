import type { PoolClient } from 'pg';
import { AetherError } from '@aether/core/errors';

/**
 * The PostgreSQL store's schema: the same tables as the embedded store (the tree of the core's
 * migrations.ts, the hub's of schema.ts) plus the chunks' data, and in hub_feed the rows each
 * commit changed (`changes`, a RowDelta), which the other hubs apply to catch up their images.
 * Names use the "C" collation: snapshot pages and tie-breaks order names bytewise, as SQLite does.
 * Numbered; `hub_schema.version` says how many are applied.
 */
export const PG_MIGRATIONS: readonly string[] = [
  `CREATE TABLE hub_state (
     id integer PRIMARY KEY CHECK (id = 1),
     hub_id text NOT NULL, hub_seq bigint NOT NULL, feed_floor bigint NOT NULL, next_ino bigint NOT NULL
   );
   INSERT INTO hub_state (id, hub_id, hub_seq, feed_floor, next_ino) VALUES (1, replace(gen_random_uuid()::text, '-', ''), 0, 0, 2);
   CREATE TABLE hub_mounts (
     mount_id text PRIMARY KEY, mount_no integer NOT NULL UNIQUE, applied_seq bigint NOT NULL, first_seen_ms double precision NOT NULL
   );
   CREATE TABLE hub_feed (
     hub_seq bigint PRIMARY KEY, mount_id text NOT NULL, journal_seq bigint NOT NULL, entry text NOT NULL, changes text NOT NULL
   );
   CREATE TABLE hub_versions (ino bigint PRIMARY KEY, content_seq bigint NOT NULL, content_mount text NOT NULL);
   CREATE TABLE hub_tombstones (
     ino bigint PRIMARY KEY, parent bigint NOT NULL, name text COLLATE "C" NOT NULL, mode integer NOT NULL,
     uid bigint NOT NULL, gid bigint NOT NULL, deleted_seq bigint NOT NULL, deleted_by text NOT NULL
   );
   CREATE TABLE hub_diverts (
     mount_id text NOT NULL, ino bigint NOT NULL, copy_ino bigint NOT NULL, hub_seq bigint NOT NULL, PRIMARY KEY (mount_id, ino)
   );
   CREATE TABLE inodes (
     ino bigint PRIMARY KEY,
     kind text NOT NULL CHECK (kind IN ('file','dir','symlink')),
     mode integer NOT NULL, uid bigint NOT NULL, gid bigint NOT NULL,
     size bigint NOT NULL, nlink integer NOT NULL,
     atime_ms double precision NOT NULL, mtime_ms double precision NOT NULL, ctime_ms double precision NOT NULL,
     target text
   );
   CREATE TABLE dentries (parent bigint NOT NULL, name text COLLATE "C" NOT NULL, ino bigint NOT NULL, PRIMARY KEY (parent, name));
   CREATE INDEX dentries_by_ino ON dentries (ino);
   CREATE TABLE blocks (ino bigint NOT NULL, idx bigint NOT NULL, hash text NOT NULL, PRIMARY KEY (ino, idx));
   CREATE TABLE chunks (hash text PRIMARY KEY, data bytea NOT NULL);`,
  'CREATE TABLE hub_dying (hash text PRIMARY KEY, since_ms double precision NOT NULL)',
  'CREATE TABLE hub_held_resolutions (mount_id text PRIMARY KEY, resolutions text NOT NULL)',
];

/** The advisory lock every hub takes while it migrates: concurrent starts on one database do not race. */
const MIGRATION_LOCK = 0x61657468; // 'aeth'

/**
 * Applies the migrations this database lacks, each in its own transaction, and creates the root
 * directory (owned by `rootOwner`) on a new database.
 */
export async function migratePg(client: PoolClient, rootOwner: { uid: number; gid: number }, nowMs: number): Promise<void> {
  await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
  try {
    await client.query('CREATE TABLE IF NOT EXISTS hub_schema (version integer NOT NULL)');
    const rows = (await client.query<{ version: number }>('SELECT version FROM hub_schema')).rows;
    if (rows.length === 0) await client.query('INSERT INTO hub_schema (version) VALUES (0)');
    const version = rows[0]?.version ?? 0;
    if (version > PG_MIGRATIONS.length) throw new AetherError('STORE_CORRUPT', `the database has hub schema version ${version}, newer than this Aether (${PG_MIGRATIONS.length})`);
    for (let v = version; v < PG_MIGRATIONS.length; v++) {
      await client.query('BEGIN');
      try {
        await client.query(PG_MIGRATIONS[v] as string);
        if (v === 0) {
          await client.query(
            `INSERT INTO inodes (ino, kind, mode, uid, gid, size, nlink, atime_ms, mtime_ms, ctime_ms, target) VALUES (1, 'dir', ${0o755}, $1, $2, 0, 2, $3, $3, $3, NULL)`,
            [rootOwner.uid, rootOwner.gid, nowMs],
          );
        }
        await client.query('UPDATE hub_schema SET version = $1', [v + 1]);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK');
        throw err;
      }
    }
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]);
  }
}
