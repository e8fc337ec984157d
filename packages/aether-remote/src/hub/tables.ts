import type { Database, Statement } from 'better-sqlite3';
import { MOUNT_NO_MAX } from './schema.js';
import { AetherError } from '@aether/core/errors';
import type { CommitTables } from './commit.js';
import type { Resolution } from '../protocol/frames.js';
import type { FeedRow } from './storage.js';

export interface HubStateRow {
  hub_id: string;
  hub_seq: number;
  feed_floor: number;
  next_ino: number;
}
export interface MountRow {
  mount_id: string;
  mount_no: number;
  applied_seq: number;
}
export interface VersionRow {
  content_seq: number;
  content_mount: string;
}
export interface TombstoneRow {
  ino: number;
  parent: number;
  name: string;
  mode: number;
  uid: number;
  gid: number;
  deleted_seq: number;
  deleted_by: string;
}

/**
 * The hub's queries on one connection: the writer's inside a commit, or a read-only one (which
 * sees committed state only). Statements are prepared on first use, so a read-only connection
 * never prepares a write.
 */
export class HubTables implements CommitTables {
  private readonly cache = new Map<string, Statement>();

  constructor(readonly db: Database) {}

  private st(sql: string): Statement {
    let s = this.cache.get(sql);
    if (!s) this.cache.set(sql, (s = this.db.prepare(sql)));
    return s;
  }

  state(): HubStateRow {
    return this.st('SELECT hub_id, hub_seq, feed_floor, next_ino FROM hub_state WHERE id = 1').get() as HubStateRow;
  }
  setState(s: Omit<HubStateRow, 'hub_id'>): void {
    this.st('UPDATE hub_state SET hub_seq = @hub_seq, feed_floor = @feed_floor, next_ino = @next_ino WHERE id = 1').run(s);
  }

  mount(mountId: string): MountRow | undefined {
    return this.st('SELECT mount_id, mount_no, applied_seq FROM hub_mounts WHERE mount_id = ?').get(mountId) as MountRow | undefined;
  }
  /** Registers a mount id under the next free mount number (numbers are never reused). */
  addMount(mountId: string, nowMs: number): MountRow {
    const max = (this.st('SELECT COALESCE(MAX(mount_no), 0) AS n FROM hub_mounts').get() as { n: number }).n;
    if (max >= MOUNT_NO_MAX) throw new AetherError('STORE_CORRUPT', `the hub has handed out all ${MOUNT_NO_MAX} mount numbers`);
    this.st('INSERT INTO hub_mounts (mount_id, mount_no, applied_seq, first_seen_ms) VALUES (?, ?, 0, ?)').run(mountId, max + 1, nowMs);
    return { mount_id: mountId, mount_no: max + 1, applied_seq: 0 };
  }
  setApplied(mountId: string, seq: number): void {
    this.st('UPDATE hub_mounts SET applied_seq = ? WHERE mount_id = ?').run(seq, mountId);
  }

  heldResolutions(mountId: string): Resolution[] {
    const row = this.st('SELECT resolutions FROM hub_held_resolutions WHERE mount_id = ?').get(mountId) as { resolutions: string } | undefined;
    return row ? (JSON.parse(row.resolutions) as Resolution[]) : [];
  }
  setHeldResolutions(mountId: string, rs: Resolution[]): void {
    if (rs.length === 0) this.st('DELETE FROM hub_held_resolutions WHERE mount_id = ?').run(mountId);
    else this.st('INSERT OR REPLACE INTO hub_held_resolutions (mount_id, resolutions) VALUES (?, ?)').run(mountId, JSON.stringify(rs));
  }

  appendFeed(hubSeq: number, mountId: string, journalSeq: number, entry: string): void {
    this.st('INSERT INTO hub_feed (hub_seq, mount_id, journal_seq, entry) VALUES (?, ?, ?, ?)').run(hubSeq, mountId, journalSeq, entry);
  }
  pruneFeed(upToSeq: number): void {
    this.st('DELETE FROM hub_feed WHERE hub_seq <= ?').run(upToSeq);
  }
  feedAfter(seq: number, limit: number): FeedRow[] {
    return this.st('SELECT hub_seq, entry FROM hub_feed WHERE hub_seq > ? ORDER BY hub_seq LIMIT ?').all(seq, limit) as FeedRow[];
  }
  feedCount(): number {
    return (this.st('SELECT COUNT(*) AS n FROM hub_feed').get() as { n: number }).n;
  }

  version(ino: number): VersionRow | undefined {
    return this.st('SELECT content_seq, content_mount FROM hub_versions WHERE ino = ?').get(ino) as VersionRow | undefined;
  }
  setVersion(ino: number, seq: number, mountId: string): void {
    this.st('INSERT OR REPLACE INTO hub_versions (ino, content_seq, content_mount) VALUES (?, ?, ?)').run(ino, seq, mountId);
  }
  dropVersion(ino: number): void {
    this.st('DELETE FROM hub_versions WHERE ino = ?').run(ino);
  }

  tombstone(ino: number): TombstoneRow | undefined {
    return this.st('SELECT * FROM hub_tombstones WHERE ino = ?').get(ino) as TombstoneRow | undefined;
  }
  setTombstone(t: TombstoneRow): void {
    this.st('INSERT OR REPLACE INTO hub_tombstones (ino, parent, name, mode, uid, gid, deleted_seq, deleted_by) VALUES (@ino, @parent, @name, @mode, @uid, @gid, @deleted_seq, @deleted_by)').run(t);
  }

  divert(mountId: string, ino: number): { copy_ino: number; hub_seq: number } | undefined {
    return this.st('SELECT copy_ino, hub_seq FROM hub_diverts WHERE mount_id = ? AND ino = ?').get(mountId, ino) as { copy_ino: number; hub_seq: number } | undefined;
  }
  setDivert(mountId: string, ino: number, copyIno: number, hubSeq: number): void {
    this.st('INSERT OR REPLACE INTO hub_diverts (mount_id, ino, copy_ino, hub_seq) VALUES (?, ?, ?, ?)').run(mountId, ino, copyIno, hubSeq);
  }

  /** A name of `ino`, preferring one in `preferParent`; none of `except` (`${parent}/${name}`). */
  dentryOf(ino: number, preferParent = 0, except?: ReadonlySet<string>): { parent: number; name: string } | undefined {
    if (!except) return this.st('SELECT parent, name FROM dentries WHERE ino = ? ORDER BY parent = ? DESC, parent, name LIMIT 1').get(ino, preferParent) as { parent: number; name: string } | undefined;
    const all = this.st('SELECT parent, name FROM dentries WHERE ino = ? ORDER BY parent = ? DESC, parent, name').all(ino, preferParent) as { parent: number; name: string }[];
    return all.find((d) => !except.has(`${d.parent}/${d.name}`));
  }

  hasChunk(hash: string): boolean {
    return this.st('SELECT 1 FROM chunks WHERE hash = ?').get(hash) !== undefined;
  }
}
