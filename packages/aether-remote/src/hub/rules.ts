/**
 * How the hub applies one mount's op to the shared tree, conflicts included (PROTOCOL.md,
 * "Conflicts"). The principles: ops follow inodes, not names; the first change committed at the
 * hub wins a name; a change made on top of an older version of something another mount changed
 * meanwhile is kept beside it under a conflict name, never dropped; what could not be applied is
 * reported. Every applied op is recorded in the hub's own terms, so replaying the recorded ops
 * reproduces the hub's tree exactly.
 */
import { applyOp, TreeError } from '@aether/core/tree/apply';
import { applyContent, type BlockMapTx, type ContentOp } from '@aether/core/tree/content';
import type { Inode } from '@aether/core/tree/inode';
import { RENAME_EXCHANGE, ROOT_INO, type Op } from '@aether/core/tree/ops';
import type { Resolution } from '../protocol/frames.js';
import type { WireEntry, WireOp } from '../protocol/wire-ops.js';
import { conflictName } from './conflict-name.js';
import { INO_RANGE } from './schema.js';
import type { TombstoneRow, VersionRow } from './tables.js';

/** The hub's own rows the rules read and write besides the tree (schema.ts says what each holds). */
export interface RuleTables {
  version(ino: number): VersionRow | undefined;
  setVersion(ino: number, seq: number, mountId: string): void;
  dropVersion(ino: number): void;
  tombstone(ino: number): TombstoneRow | undefined;
  setTombstone(t: TombstoneRow): void;
  divert(mountId: string, ino: number): { copy_ino: number; hub_seq: number } | undefined;
  setDivert(mountId: string, ino: number, copyIno: number, hubSeq: number): void;
  /**
   * A name of `ino`, preferring one in `preferParent`, then the lowest parent, then the lowest name
   * (bytewise); none of `except` (keys `${parent}/${name}`).
   */
  dentryOf(ino: number, preferParent?: number, except?: ReadonlySet<string>): { parent: number; name: string } | undefined;
}

export interface ApplyContext {
  mountId: string;
  /** The hub sequence this batch commits as. */
  hubSeq: number;
  nowMs: number;
  /** Hands out an inode number of the hub's own range (conflict copies). */
  allocIno: () => number;
}

/**
 * The writer recorded in hub_versions for content that reached a conflict copy from file `ino`
 * of `mountId` (the copy's making, diverted writes): not the mount itself, whose view of the copy
 * is a file of its own that shows none of it. Mount ids hold no "/".
 */
export function divertSource(mountId: string, ino: number): string {
  return `${mountId}/${ino}`;
}

/** The remover a tombstone names for a removal the mount's view did not apply (`viewKept`). */
function keptRemover(mountId: string): string {
  return `${mountId}/kept`;
}

export class HubApplier {
  readonly ops: { jseq: number; op: WireOp }[] = [];
  readonly resolutions: Resolution[] = [];

  constructor(
    private readonly meta: BlockMapTx,
    private readonly tables: RuleTables,
    private readonly ctx: ApplyContext,
  ) {}

  apply(e: WireEntry, batchBaseSeq: number): void {
    const base = e.baseSeq ?? batchBaseSeq;
    const op = e.op;
    switch (op.t) {
      case 'mknode':
        return this.mknode(e.seq, op);
      case 'link':
        return this.link(e.seq, op);
      case 'unlink':
      case 'rmdir':
        return this.remove(e.seq, op, base, e.viewKept);
      case 'rename':
        return this.rename(e.seq, op, base, e.viewKept !== undefined);
      case 'content':
        return this.content(e.seq, op, base);
      case 'setattr':
        if (!this.meta.getInode(op.ino)) return this.skip(e.seq, 'gone');
        this.tree(e.seq, op, { ...op });
        return;
      case 'forget':
        // The hub keeps no unlinked-but-open inodes, so there is nothing to forget.
        return;
    }
  }

  private skip(jseq: number, reason: string): void {
    this.resolutions.push({ jseq, kind: 'skipped', reason });
  }

  /** Applies a tree op and records `wire` as applied; a POSIX refusal is reported, not thrown. */
  private tree(jseq: number, op: Op, wire: WireOp): boolean {
    try {
      applyOp(this.meta, op, { keepOrphans: false });
    } catch (err) {
      if (!(err instanceof TreeError)) throw err;
      this.skip(jseq, err.errno);
      return false;
    }
    this.ops.push({ jseq, op: wire });
    return true;
  }

  private isDir(ino: number): boolean {
    return this.meta.getInode(ino)?.kind === 'dir';
  }

  private freeName(parent: number, wanted: string): string {
    return conflictName(wanted, this.ctx.mountId, this.ctx.nowMs, (n) => this.meta.lookup(parent, n) !== undefined);
  }

  /**
   * True when the content of `ino` changed after `base` by another writer: another mount, or this
   * mount's writes diverted into it from another file (divertSource), which its own view of
   * `ino` does not show.
   */
  private changedByOther(ino: number, base: number): boolean {
    const v = this.tables.version(ino);
    return v !== undefined && v.content_seq > base && v.content_mount !== this.ctx.mountId;
  }

  /** Where the entry a mount named is now: the name if it still holds `ino`, else a name of `ino`. */
  private locate(parent: number, name: string, ino: number): { parent: number; name: string } | undefined {
    if (this.meta.lookup(parent, name) === ino) return { parent, name };
    return this.tables.dentryOf(ino, parent);
  }

  private tombstoneIfGone(inode: Inode, at: { parent: number; name: string }, by = this.ctx.mountId): void {
    if (this.meta.getInode(inode.ino)) return;
    this.tables.dropVersion(inode.ino);
    this.tables.setTombstone({ ino: inode.ino, ...at, mode: inode.mode, uid: inode.uid, gid: inode.gid, deleted_seq: this.ctx.hubSeq, deleted_by: by });
  }

  private mknode(jseq: number, op: WireOp & { t: 'mknode' }): void {
    if (this.meta.getInode(op.ino)) return this.skip(jseq, 'ino-exists');
    let { parent, name } = op;
    // A directory another mount removed: the new entry lands in the root rather than vanishing.
    if (!this.isDir(parent)) parent = ROOT_INO;
    if (parent !== op.parent || this.meta.lookup(parent, name) !== undefined) name = this.freeName(parent, op.name);
    const placed = { ...op, parent, name };
    if (!this.tree(jseq, placed, placed)) return;
    if (parent !== op.parent || name !== op.name) this.resolutions.push({ jseq, kind: 'renamed', ino: op.ino, parent, name, wanted: op.name });
    if (op.kind === 'file') this.tables.setVersion(op.ino, this.ctx.hubSeq, this.ctx.mountId);
  }

  private link(jseq: number, op: WireOp & { t: 'link' }): void {
    if (!this.meta.getInode(op.ino)) return this.skip(jseq, 'gone');
    if (!this.isDir(op.parent)) return this.skip(jseq, 'parent-gone');
    const name = this.meta.lookup(op.parent, op.name) === undefined ? op.name : this.freeName(op.parent, op.name);
    const placed = { ...op, name };
    if (this.tree(jseq, placed, placed) && name !== op.name) this.resolutions.push({ jseq, kind: 'renamed', ino: op.ino, parent: op.parent, name, wanted: op.name });
  }

  private remove(jseq: number, op: WireOp & { t: 'unlink' | 'rmdir' }, base: number, viewKept: readonly [number, string][] | undefined): void {
    // The mount still names the file (`viewKept`): it removed a name, not the file. Where the hub
    // no longer has the file under that name, the removal goes to another of its names, one the
    // mount does not still hold (rm -r of both names of a hard link while another mount renamed
    // one: a review saw the file come back), and is not applied when there is none (applied to a
    // name the mount went on using, it deleted the file and dropped the mount's write to it: fuzz
    // seed 6466).
    const kept = viewKept ? new Set(viewKept.map(([p, n]) => `${p}/${n}`)) : undefined;
    const at = kept && this.meta.lookup(op.parent, op.name) !== op.ino ? this.tables.dentryOf(op.ino, op.parent, kept) : this.locate(op.parent, op.name, op.ino);
    if (kept && !at && this.meta.getInode(op.ino)) return this.skip(jseq, 'name-gone');
    const inode = this.meta.getInode(op.ino);
    if (!at || !inode) return this.skip(jseq, 'gone');
    // A delete loses against a content change it did not see: the changed file stays. Removing
    // one name of several loses nothing: the content lives on under the others.
    if (op.t === 'unlink' && inode.nlink <= 1 && this.changedByOther(op.ino, base)) return this.skip(jseq, 'changed');
    const placed = { ...op, ...at };
    if (!this.tree(jseq, placed, placed)) return;
    // The mount's view still shows the file (its removal did not apply there: a replay after a
    // crash, onto a tree another mount had changed), so a write to it through a descriptor opened
    // meanwhile is not one to a file it removed itself (FUZZ_FDS seed 6346 lost such a write): for
    // its later content the file was removed by another. A removal its view made (also one the hub
    // applied under another name) leaves later writes to the deleted file as they are on a disk.
    this.tombstoneIfGone(inode, at, kept ? keptRemover(this.ctx.mountId) : this.ctx.mountId);
    this.notePlace(jseq, op, at);
  }

  /** The op's name held another inode here, and it applied to a name of its own inode: the mount hears where. */
  private notePlace(jseq: number, op: { parent: number; name: string; ino: number }, at: { parent: number; name: string }): void {
    if (at.parent !== op.parent || at.name !== op.name) this.resolutions.push({ jseq, kind: 'moved', ino: op.ino, ...at });
  }

  private rename(jseq: number, op: WireOp & { t: 'rename' }, base: number, viewKept: boolean): void {
    const at = this.locate(op.parent, op.name, op.ino);
    if (!at || !this.meta.getInode(op.ino)) return this.skip(jseq, 'gone');
    if (!this.isDir(op.newParent)) return this.skip(jseq, 'parent-gone');
    const current = this.meta.lookup(op.newParent, op.newName);
    if (op.flags & RENAME_EXCHANGE) {
      if (current !== op.dstIno || current === undefined) return this.skip(jseq, 'changed');
      const placed = { ...op, ...at };
      if (this.tree(jseq, placed, placed)) this.notePlace(jseq, op, at);
      return;
    }
    let newName = op.newName;
    // The destination holds something the mount did not see there (another mount's file, or a
    // version of the expected one changed meanwhile): replacing it would lose that change.
    const collides = current !== undefined && current !== op.ino && (current !== op.dstIno || this.changedByOther(current, base));
    if (collides) newName = this.freeName(op.newParent, op.newName);
    const replaced = current !== undefined && !collides && current !== op.ino ? this.meta.getInode(current) : undefined;
    const placed = { ...op, ...at, newName, dstIno: replaced?.ino ?? 0 };
    if (!this.tree(jseq, placed, placed)) return;
    this.notePlace(jseq, op, at);
    if (collides) this.resolutions.push({ jseq, kind: 'renamed', ino: op.ino, parent: op.newParent, name: newName, wanted: op.newName });
    if (replaced) this.tombstoneIfGone(replaced, { parent: op.newParent, name: op.newName }, viewKept ? keptRemover(this.ctx.mountId) : this.ctx.mountId);
  }

  private content(jseq: number, op: ContentOp, base: number): void {
    let target = op.ino;
    const divert = this.tables.divert(this.ctx.mountId, op.ino);
    // Diverted: changes made before the mount knew of its copy, and changes to a file that was
    // already deleted when the copy was made (the mount still has it open: the copy is where its
    // content lives). A file deleted after its copy was made gets a copy of its own instead.
    const goneBeforeCopy = divert !== undefined && !this.meta.getInode(op.ino) && (this.tables.tombstone(op.ino)?.deleted_seq ?? Infinity) <= divert.hub_seq;
    const diverted = divert !== undefined && (base < divert.hub_seq || goneBeforeCopy);
    if (diverted) target = divert.copy_ino;
    const inode = this.meta.getInode(target);
    if (!inode) return this.contentOfDeleted(jseq, op, target, diverted);
    if (inode.kind !== 'file') return this.skip(jseq, 'EISDIR');
    // A diverted write was made on the copy as this file's content last reached it (the file
    // shows nothing of the copy's later changes): any other change to the copy since is unseen,
    // whatever the base, also this mount's own through the copy's name (a file of its own here).
    // Overwriting it lost that change (reviews reproduced both).
    const source = diverted ? divertSource(this.ctx.mountId, op.ino) : this.ctx.mountId;
    const unseen = diverted ? this.tables.version(target)?.content_mount !== source : this.changedByOther(target, base);
    if (unseen) {
      const at = this.tables.dentryOf(target) ?? { parent: ROOT_INO, name: `${target}` };
      this.conflictCopy(jseq, op, at, inode);
      return;
    }
    if (diverted) this.resolutions.push({ jseq, kind: 'diverted', ino: op.ino, copyIno: target });
    const placed: ContentOp = { ...op, ino: target };
    applyContent(this.meta, placed);
    this.ops.push({ jseq, op: placed });
    this.tables.setVersion(target, this.ctx.hubSeq, source);
  }

  /**
   * Content for an inode the hub no longer has: kept as a conflict copy if another mount deleted
   * it, also when the writer's base is past the delete. A mount writes to a file it saw deleted
   * only through a descriptor still open, or when its view missed the delete (two mounts changing
   * the same names: a fuzz seed lost an acknowledged write here); neither may lose the write.
   */
  private contentOfDeleted(jseq: number, op: ContentOp, ino: number, diverted: boolean): void {
    const tomb = this.tables.tombstone(ino);
    // Diverted, the copy is gone: what counts is who removed the file written to. This mount's
    // removal of the copy by its name is not one of the file (a review found such writes dropped).
    const removedHere = diverted ? !this.meta.getInode(op.ino) && this.tables.tombstone(op.ino)?.deleted_by === this.ctx.mountId : tomb?.deleted_by === this.ctx.mountId;
    if (!tomb || removedHere) return this.skip(jseq, 'gone');
    const parent = this.isDir(tomb.parent) ? tomb.parent : ROOT_INO;
    this.conflictCopy(jseq, op, { parent, name: tomb.name }, tomb);
  }

  /**
   * Makes a new file holding the mount's whole content beside `at`, and sends its later writes
   * there. Reported against the mount's own inode, also when the content was diverted to an older
   * copy (now gone or changed): the mount's file takes this copy's version as its base (reported
   * against the older copy, the mount rebased onto that one, losing the write just made).
   */
  private conflictCopy(jseq: number, op: ContentOp, at: { parent: number; name: string }, like: { mode: number; uid: number; gid: number }): void {
    const copyIno = this.ctx.allocIno();
    if (copyIno >= INO_RANGE) throw new Error('the hub inode range is exhausted');
    const name = this.freeName(at.parent, at.name);
    const mk: WireOp = { t: 'mknode', parent: at.parent, name, ino: copyIno, kind: 'file', mode: like.mode, uid: like.uid, gid: like.gid, timeMs: op.timeMs };
    applyOp(this.meta, mk, { keepOrphans: false });
    const body: ContentOp = { ...op, ino: copyIno };
    applyContent(this.meta, body);
    this.ops.push({ jseq, op: mk }, { jseq, op: body });
    this.tables.setVersion(copyIno, this.ctx.hubSeq, divertSource(this.ctx.mountId, op.ino));
    this.tables.setDivert(this.ctx.mountId, op.ino, copyIno, this.ctx.hubSeq);
    this.resolutions.push({ jseq, kind: 'conflict-copy', ino: op.ino, copyIno, parent: at.parent, name });
  }
}
