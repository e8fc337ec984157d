import type { CommitTables } from './commit.js';
import type { Resolution } from '../protocol/frames.js';
import type { Divert, HubImage } from './hub-image.js';
import { sqlLiteral } from './pg-sql.js';
import type { HubStateRow, MountRow, TombstoneRow, VersionRow } from './tables.js';

/**
 * The rows one PostgreSQL commit reads and writes besides the tree, for the synchronous commit
 * logic (commit.ts): the locked hub_state row, the committing mount's row and which named chunks
 * exist were read before; the rule rows live in the image; what the commit writes is kept here
 * and written by `write` inside the same transaction.
 */
export class PgCommitTables implements CommitTables {
  private newState: Omit<HubStateRow, 'hub_id'> | undefined;
  private applied: { mountId: string; seq: number } | undefined;
  private feed: { hubSeq: number; mountId: string; journalSeq: number; entry: string } | undefined;
  private pruneTo: number | undefined;
  private held: Resolution[] | undefined;

  constructor(
    private readonly image: HubImage,
    private readonly stateRow: HubStateRow,
    private readonly mountRow: MountRow | undefined,
    private readonly chunks: ReadonlySet<string>,
    /** The mount's hub_held_resolutions row (JSON), read with its row. */
    private readonly heldRow: string | null,
  ) {}

  state(): HubStateRow {
    return { ...this.stateRow };
  }
  setState(s: Omit<HubStateRow, 'hub_id'>): void {
    this.newState = s;
  }
  mount(mountId: string): MountRow | undefined {
    if (this.mountRow && this.mountRow.mount_id !== mountId) throw new Error(`a commit of mount ${this.mountRow.mount_id} asked for mount ${mountId}`);
    return this.mountRow;
  }
  setApplied(mountId: string, seq: number): void {
    this.applied = { mountId, seq };
  }
  hasChunk(hash: string): boolean {
    return this.chunks.has(hash);
  }
  appendFeed(hubSeq: number, mountId: string, journalSeq: number, entry: string): void {
    this.feed = { hubSeq, mountId, journalSeq, entry };
  }
  pruneFeed(upToSeq: number): void {
    this.pruneTo = upToSeq;
  }
  heldResolutions(mountId: string): Resolution[] {
    this.mount(mountId);
    return this.heldRow ? (JSON.parse(this.heldRow) as Resolution[]) : [];
  }
  setHeldResolutions(mountId: string, rs: Resolution[]): void {
    this.mount(mountId);
    this.held = rs;
  }

  version(ino: number): VersionRow | undefined {
    return this.image.version(ino);
  }
  setVersion(ino: number, seq: number, mountId: string): void {
    this.image.setVersion(ino, seq, mountId);
  }
  dropVersion(ino: number): void {
    this.image.dropVersion(ino);
  }
  tombstone(ino: number): TombstoneRow | undefined {
    return this.image.tombstone(ino);
  }
  setTombstone(t: TombstoneRow): void {
    this.image.setTombstone(t);
  }
  divert(mountId: string, ino: number): Divert | undefined {
    return this.image.divert(mountId, ino);
  }
  setDivert(mountId: string, ino: number, copyIno: number, hubSeq: number): void {
    this.image.setDivert(mountId, ino, copyIno, hubSeq);
  }
  dentryOf(ino: number, preferParent?: number, except?: ReadonlySet<string>): { parent: number; name: string } | undefined {
    return this.image.dentryOf(ino, preferParent, except);
  }

  /** The statements that write the mount's applied sequence, the feed entry (with the rows the commit changed), the prune and the state. */
  writes(changes: string): string[] {
    const out: string[] = [];
    if (this.applied) out.push(`UPDATE hub_mounts SET applied_seq = ${sqlLiteral(this.applied.seq)} WHERE mount_id = ${sqlLiteral(this.applied.mountId)}`);
    if (this.held && this.mountRow) {
      const id = sqlLiteral(this.mountRow.mount_id);
      if (this.held.length === 0) out.push(`DELETE FROM hub_held_resolutions WHERE mount_id = ${id}`);
      else out.push(`INSERT INTO hub_held_resolutions (mount_id, resolutions) VALUES (${id}, ${sqlLiteral(JSON.stringify(this.held))}) ON CONFLICT (mount_id) DO UPDATE SET resolutions = EXCLUDED.resolutions`);
    }
    if (this.feed) {
      const f = this.feed;
      out.push(`INSERT INTO hub_feed (hub_seq, mount_id, journal_seq, entry, changes) VALUES (${[f.hubSeq, f.mountId, f.journalSeq, f.entry, changes].map(sqlLiteral).join(', ')})`);
    }
    if (this.pruneTo !== undefined) out.push(`DELETE FROM hub_feed WHERE hub_seq <= ${sqlLiteral(this.pruneTo)}`);
    if (this.newState) {
      const s = this.newState;
      out.push(`UPDATE hub_state SET hub_seq = ${sqlLiteral(s.hub_seq)}, feed_floor = ${sqlLiteral(s.feed_floor)}, next_ino = ${sqlLiteral(s.next_ino)} WHERE id = 1`);
    }
    return out;
  }
}
