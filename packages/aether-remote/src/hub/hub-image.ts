import type { BlockMapTx, BlockRef } from '@aether/core/tree/content';
import type { Inode } from '@aether/core/tree/inode';
import { MemoryMeta } from '@aether/core/tree/meta';
import type { RuleTables } from './rules.js';
import type { TombstoneRow, VersionRow } from './tables.js';

/**
 * The rows one commit changed, with their new values (null: deleted): what the commit writes, and
 * what the other hubs apply to their images (it travels in the feed row).
 */
export interface RowDelta {
  /** Inodes. */
  i: [number, Inode | null][];
  /** Whole block maps. */
  b: [number, BlockRef[]][];
  /** Directory entries: parent, name, inode. */
  d: [number, string, number | null][];
  /** hub_versions and hub_tombstones by inode; hub_diverts by mount id and inode. */
  v: [number, VersionRow | null][];
  t: [number, TombstoneRow | null][];
  x: [string, number, Divert | null][];
}

export function isEmptyDelta(d: RowDelta): boolean {
  return d.i.length + d.b.length + d.d.length + d.v.length + d.t.length + d.x.length === 0;
}

interface Changes {
  i: Set<number>;
  b: Set<number>;
  d: Map<string, [number, string]>;
  v: Set<number>;
  t: Set<number>;
  x: Map<string, [string, number]>;
}

export interface Divert {
  copy_ino: number;
  hub_seq: number;
}

function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/**
 * A PostgreSQL hub's copy of the committed tree and the rule rows, in memory, so that the same
 * synchronous rules (rules.ts) run on it as on SQLite. While recording, it notes every row a commit
 * changes; the commit writes exactly those rows and puts them in its feed row, from which the other
 * hubs apply them (`applyDelta`). `seq` is the hub sequence the image is at.
 */
export class HubImage extends MemoryMeta implements BlockMapTx, RuleTables {
  seq = 0;
  readonly blockMaps = new Map<number, readonly BlockRef[]>();
  private readonly versions = new Map<number, VersionRow>();
  private readonly tombstones = new Map<number, TombstoneRow>();
  private readonly diverts = new Map<string, Divert>();
  /** Every name of each inode (the rules find an inode's current place by it). */
  private readonly names = new Map<number, [number, string][]>();
  private changes: Changes | undefined;

  /** Starts noting changed rows. */
  record(): void {
    this.changes = { i: new Set(), b: new Set(), d: new Map(), v: new Set(), t: new Set(), x: new Map() };
  }

  /** True while a commit is being recorded: the image is then ahead of the database until it commits. */
  get recording(): boolean {
    return this.changes !== undefined;
  }

  /** Stops recording; the rows changed since `record()`, as they are now. */
  takeChanges(): RowDelta {
    const c = this.changes;
    this.changes = undefined;
    if (!c) return { i: [], b: [], d: [], v: [], t: [], x: [] };
    return {
      i: [...c.i].map((ino) => [ino, this.getInode(ino) ?? null]),
      b: [...c.b].map((ino) => [ino, [...this.blocksOf(ino)]]),
      d: [...c.d.values()].map(([parent, name]) => [parent, name, this.lookup(parent, name) ?? null]),
      v: [...c.v].map((ino) => [ino, this.version(ino) ?? null]),
      t: [...c.t].map((ino) => [ino, this.tombstone(ino) ?? null]),
      x: [...c.x.values()].map(([mountId, ino]) => [mountId, ino, this.divert(mountId, ino) ?? null]),
    };
  }

  /** Applies another hub's commit (not recorded). Inodes first: a new directory must exist before entries go into it. */
  applyDelta(d: RowDelta): void {
    for (const [ino, inode] of d.i) this.loadInode(ino, inode ?? undefined);
    for (const [parent, name, ino] of d.d) this.loadEntry(parent, name, ino ?? undefined);
    for (const [ino, blocks] of d.b) this.loadBlocks(ino, blocks);
    for (const [ino, v] of d.v) this.loadVersion(ino, v ?? undefined);
    for (const [ino, t] of d.t) this.loadTombstone(ino, t ?? undefined);
    for (const [mountId, ino, x] of d.x) this.loadDivert(mountId, ino, x ?? undefined);
  }

  // ---- the tree (MetaTx, BlockMapTx) ----

  override putInode(inode: Inode): void {
    super.putInode(inode);
    this.changes?.i.add(inode.ino);
  }
  override deleteInode(ino: number): void {
    super.deleteInode(ino);
    this.changes?.i.add(ino);
  }
  override addEntry(parent: number, name: string, ino: number): void {
    super.addEntry(parent, name, ino);
    const list = this.names.get(ino);
    if (list) list.push([parent, name]);
    else this.names.set(ino, [[parent, name]]);
    this.changes?.d.set(`${parent}/${name}`, [parent, name]);
  }
  override removeEntry(parent: number, name: string): void {
    const ino = this.lookup(parent, name);
    super.removeEntry(parent, name);
    if (ino !== undefined) {
      const list = (this.names.get(ino) ?? []).filter(([p, n]) => p !== parent || n !== name);
      if (list.length > 0) this.names.set(ino, list);
      else this.names.delete(ino);
    }
    this.changes?.d.set(`${parent}/${name}`, [parent, name]);
  }
  override dropContent(ino: number): void {
    super.dropContent(ino);
    if (this.blockMaps.delete(ino)) this.changes?.b.add(ino);
  }
  replaceBlocks(ino: number, blocks: readonly BlockRef[]): void {
    if (blocks.length === 0) this.blockMaps.delete(ino);
    else this.blockMaps.set(ino, blocks);
    this.changes?.b.add(ino);
  }
  blocksOf(ino: number): readonly BlockRef[] {
    return this.blockMaps.get(ino) ?? [];
  }

  // ---- the rule rows (RuleTables) ----

  version(ino: number): VersionRow | undefined {
    return this.versions.get(ino);
  }
  setVersion(ino: number, seq: number, mountId: string): void {
    this.versions.set(ino, { content_seq: seq, content_mount: mountId });
    this.changes?.v.add(ino);
  }
  dropVersion(ino: number): void {
    this.versions.delete(ino);
    this.changes?.v.add(ino);
  }
  tombstone(ino: number): TombstoneRow | undefined {
    return this.tombstones.get(ino);
  }
  setTombstone(t: TombstoneRow): void {
    this.tombstones.set(t.ino, { ...t });
    this.changes?.t.add(t.ino);
  }
  divert(mountId: string, ino: number): Divert | undefined {
    return this.diverts.get(`${mountId}/${ino}`);
  }
  setDivert(mountId: string, ino: number, copyIno: number, hubSeq: number): void {
    this.diverts.set(`${mountId}/${ino}`, { copy_ino: copyIno, hub_seq: hubSeq });
    this.changes?.x.set(`${mountId}/${ino}`, [mountId, ino]);
  }
  /** As the SQLite query orders it: `preferParent` first, then the lowest parent, then the lowest name (bytewise). */
  dentryOf(ino: number, preferParent = 0, except?: ReadonlySet<string>): { parent: number; name: string } | undefined {
    let best: [number, string] | undefined;
    for (const cur of this.names.get(ino) ?? []) {
      if (except?.has(`${cur[0]}/${cur[1]}`)) continue;
      if (!best) best = cur;
      else if ((cur[0] === preferParent) !== (best[0] === preferParent)) best = cur[0] === preferParent ? cur : best;
      else if (cur[0] !== best[0]) best = cur[0] < best[0] ? cur : best;
      else if (byteOrder(cur[1], best[1]) < 0) best = cur;
    }
    return best && { parent: best[0], name: best[1] };
  }

  // ---- loading rows read from the database (not recorded) ----

  /** Sets inode `ino` as the database holds it (undefined: deleted). Load inodes before their names. */
  loadInode(ino: number, inode: Inode | undefined): void {
    if (inode) super.putInode(inode);
    else if (this.inodes.has(ino)) super.deleteInode(ino);
  }
  loadEntry(parent: number, name: string, ino: number | undefined): void {
    const paused = this.changes;
    this.changes = undefined;
    if (this.lookup(parent, name) !== undefined) this.removeEntry(parent, name);
    if (ino !== undefined) this.addEntry(parent, name, ino);
    this.changes = paused;
  }
  loadBlocks(ino: number, blocks: readonly BlockRef[]): void {
    if (blocks.length === 0) this.blockMaps.delete(ino);
    else this.blockMaps.set(ino, blocks);
  }
  loadVersion(ino: number, v: VersionRow | undefined): void {
    if (v) this.versions.set(ino, v);
    else this.versions.delete(ino);
  }
  loadTombstone(ino: number, t: TombstoneRow | undefined): void {
    if (t) this.tombstones.set(ino, t);
    else this.tombstones.delete(ino);
  }
  loadDivert(mountId: string, ino: number, d: Divert | undefined): void {
    if (d) this.diverts.set(`${mountId}/${ino}`, d);
    else this.diverts.delete(`${mountId}/${ino}`);
  }
}
