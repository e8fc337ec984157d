import type { StoreExtension } from '@aether/core/store/store';

/**
 * The hub's tables, in the store's database so that a batch's tree changes, its changefeed entry
 * and the mount's applied sequence commit in one transaction.
 *
 * - hub_state: one row: the hub's id, the changefeed sequence, the feed floor (entries above it are
 *   retained) and the next inode number of the hub's own range (conflict copies).
 * - hub_mounts: mount id → mount number (assigned once) and the highest journal sequence applied.
 * - hub_feed: the changefeed, one JSON entry per committed batch.
 * - hub_versions: per file, the hub sequence and mount of its last content change (conflicts).
 * - hub_tombstones: inodes deleted at the hub, where they were and who deleted them, so a late
 *   write to a file another mount deleted becomes a conflict copy instead of vanishing.
 * - hub_diverts: after a conflict copy, later writes of the losing mount made before it saw the
 *   copy go to the copy instead of making one copy per batch.
 * - hub_held_resolutions: per mount, the resolutions of its committed batches from the first entry
 *   of its last batch on (JSON Resolution[]): an ack it lost gives them again (commit.ts).
 * - hub_dying: chunks neither the tree nor a retained changefeed entry names, since when (the
 *   space reclaim drops them once that is longer ago than the grace period: `chunk-reclaim.ts`).
 */
/** Chunks named by the `content` ops of retained changefeed entries (SQLite). */
export const FEED_CHUNKS_SQLITE = "SELECT json_extract(b.value, '$[1]') FROM hub_feed, json_each(hub_feed.entry, '$.ops') AS o, json_each(o.value, '$.op.blocks') AS b";

export const HUB_EXTENSION: StoreExtension = {
  name: 'hub',
  migrations: [
    `CREATE TABLE hub_state (
       id INTEGER PRIMARY KEY CHECK (id = 1),
       hub_id TEXT NOT NULL, hub_seq INTEGER NOT NULL, feed_floor INTEGER NOT NULL, next_ino INTEGER NOT NULL
     );
     INSERT INTO hub_state (id, hub_id, hub_seq, feed_floor, next_ino) VALUES (1, lower(hex(randomblob(16))), 0, 0, 2);
     CREATE TABLE hub_mounts (
       mount_id TEXT PRIMARY KEY, mount_no INTEGER NOT NULL UNIQUE, applied_seq INTEGER NOT NULL, first_seen_ms REAL NOT NULL
     ) WITHOUT ROWID;
     CREATE TABLE hub_feed (hub_seq INTEGER PRIMARY KEY, mount_id TEXT NOT NULL, journal_seq INTEGER NOT NULL, entry TEXT NOT NULL);
     CREATE TABLE hub_versions (ino INTEGER PRIMARY KEY, content_seq INTEGER NOT NULL, content_mount TEXT NOT NULL);
     CREATE TABLE hub_tombstones (
       ino INTEGER PRIMARY KEY, parent INTEGER NOT NULL, name TEXT NOT NULL, mode INTEGER NOT NULL, uid INTEGER NOT NULL, gid INTEGER NOT NULL,
       deleted_seq INTEGER NOT NULL, deleted_by TEXT NOT NULL
     );
     CREATE TABLE hub_diverts (
       mount_id TEXT NOT NULL, ino INTEGER NOT NULL, copy_ino INTEGER NOT NULL, hub_seq INTEGER NOT NULL, PRIMARY KEY (mount_id, ino)
     ) WITHOUT ROWID;`,
    'CREATE TABLE hub_dying (hash TEXT PRIMARY KEY, since_ms REAL NOT NULL, expired INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID',
    'CREATE TABLE hub_held_resolutions (mount_id TEXT PRIMARY KEY, resolutions TEXT NOT NULL) WITHOUT ROWID',
  ],
  // The store's space reclaim drops only chunks whose grace has expired (and a retained entry's never).
  liveChunks: `SELECT hash FROM chunks WHERE hash NOT IN (SELECT hash FROM hub_dying WHERE expired = 1) UNION ${FEED_CHUNKS_SQLITE}`,
};

/** Mount numbers are below 2^21 so that mountNo × 2^32 + counter stays a safe integer. */
export const MOUNT_NO_MAX = 2 ** 21 - 1;
export const INO_RANGE = 2 ** 32;
