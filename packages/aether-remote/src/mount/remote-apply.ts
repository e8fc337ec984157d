import { applyOp } from '@aether/core/tree/apply';
import type { MemoryMeta } from '@aether/core/tree/meta';
import { RENAME_EXCHANGE, ROOT_INO, type Ino, type Op } from '@aether/core/tree/ops';
import type { Inode } from '@aether/core/tree/inode';
import type { Resolution } from '../protocol/frames.js';
import { mergeSnapshot, touchedBy } from './snapshot-merge.js';
import type { WireOp } from '../protocol/wire-ops.js';

/** The committed tree (the replica) as the hub left it after this mount's batch. */
export interface CommittedTree {
  getInode(ino: Ino): Inode | undefined;
  lookup(parent: Ino, name: string): Ino | undefined;
  children(dir: Ino): [string, Ino][];
  nameOf(ino: Ino): { parent: Ino; name: string } | undefined;
}

/** What remote changes need of the cache. */
export interface RemoteCache {
  invalidate(ino: Ino): Promise<void>;
  remove(ino: Ino): Promise<void>;
}

export interface RemoteApplyDeps {
  /** The mount's in-memory view (what FUSE serves). */
  view: MemoryMeta;
  /** The bridge drain's tree of what has been shipped: it must see other mounts' names too. */
  shipped: MemoryMeta;
  cache: RemoteCache;
  log: (line: string) => void;
  /**
   * True while the file has local content changes the hub has not acknowledged: a remote content
   * change then leaves the view alone (size, times, the cached local version), so that the local
   * version ships whole; the hub's conflict rules keep both and the resolution syncs the view.
   */
  editedLocally?: (ino: Ino) => boolean;
  /** Open here, or with unacknowledged local changes: a remote removal leaves the inode without a name. */
  inUse?: (ino: Ino) => boolean;
  /** An unlink or rename over made here and not yet acknowledged removed this inode (the hub will remove it too). */
  removedHere?: (ino: Ino) => boolean;
  /** A remote change did not apply as it came: the view may differ from the replica once nothing is pending. */
  diverged?: () => void;
  /** The replica, already holding the changefeed entry being applied. */
  hub?: Pick<CommittedTree, 'getInode' | 'lookup'>;
}

/**
 * Mirrors other mounts' committed changes (changefeed entries, already in the replica) into the
 * mount's view, and drops clean cached data they made stale. Local changes not yet shipped sit on
 * top: an op that no longer applies to the view (this mount changed the same names meanwhile) is
 * logged and left to the hub's conflict rules, whose outcome arrives as later entries.
 */
export class RemoteApply {
  /** Files whose remote changes the view skipped while they had unacknowledged local changes. */
  private readonly stale = new Set<Ino>();

  constructor(private readonly d: RemoteApplyDeps) {}

  /**
   * `ino`'s local changes are all acknowledged: if remote changes were kept from its view
   * meanwhile, it now shows the file as the hub (the replica) has it. Without this, an edit
   * another mount made on top of this mount's version, arriving before the acknowledgement, was
   * never shown here, and this mount's next write replaced it.
   */
  settled(ino: Ino, committed: CommittedTree): boolean {
    if (!this.stale.delete(ino)) return false;
    this.resync(ino, (i) => committed.getInode(i));
    return true;
  }

  /**
   * A node this mount made, kept without a name (its directory or name was gone at a restart),
   * whose creation the hub acknowledged: it gets the name the hub gave it, if the hub placed it
   * where the view has room (a 'renamed' resolution names it otherwise).
   */
  nameAsCommitted(ino: Ino, committed: CommittedTree): void {
    if (this.d.view.getInode(ino)?.nlink !== 0) return;
    const at = committed.nameOf(ino);
    if (at) this.link(at.parent, at.name, ino);
  }

  /** `ino`'s remote changes were kept from the view (before a restart): settling shows them. */
  keptFromView(ino: Ino): void {
    this.stale.add(ino);
  }

  apply(ops: readonly WireOp[]): void {
    const gone: Ino[] = [];
    for (const op of ops) {
      this.applyTo(this.d.view, op, true);
      this.applyTo(this.d.shipped, op, false);
      const removed = op.t === 'unlink' ? op.ino : op.t === 'rename' ? op.dstIno : 0;
      if (removed) gone.push(removed);
    }
    this.unnameGone(gone);
  }

  private applyTo(tree: MemoryMeta, op: WireOp, isView: boolean): void {
    try {
      if (op.t === 'content') {
        const inode = tree.getInode(op.ino);
        if (inode?.kind !== 'file') return;
        if (isView && this.d.editedLocally?.(op.ino)) {
          this.stale.add(op.ino);
          return;
        }
        tree.putInode({ ...inode, size: op.size, mtimeMs: op.timeMs, ctimeMs: op.timeMs });
        if (isView) {
          tree.markAllocated(op.ino, 0, op.size);
          this.dropClean(op.ino);
        }
        return;
      }
      if (op.t === 'forget') return;
      // Ops follow inodes: a name that holds another inode here than the hub's op names (made
      // here since, not yet shipped) is not the op's to remove or replace (a fuzz seed lost a new
      // file's content when another mount's unlink of the old one removed it here by name).
      if (op.t === 'unlink' || op.t === 'rmdir' || op.t === 'rename') {
        const held = tree.lookup(op.parent, op.name);
        if (held !== undefined && held !== op.ino) throw new Error(`${op.name} holds inode ${held} here, not ${op.ino}`);
        const over = op.t === 'rename' && !(op.flags & RENAME_EXCHANGE) ? tree.lookup(op.newParent, op.newName) : undefined;
        if (over !== undefined && op.t === 'rename' && over !== op.dstIno && over !== op.ino) {
          this.unnameMoved(tree, op.parent, op.name, op.ino);
          throw new Error(`${op.newName} holds inode ${over} here, not ${op.dstIno || 'nothing'}`);
        }
      }
      const gone = op.t === 'unlink' ? op.ino : op.t === 'rename' ? op.dstIno : 0;
      // Open handles read on, and unshipped changes still ship (the Vfs forgets the inode after).
      applyOp(tree, op as Op, { keepOrphans: isView && gone !== 0 && (this.d.inUse?.(gone) ?? false) });
      // The removed (or replaced) inode's cached data goes with it.
      if (isView && gone && !tree.getInode(gone)) void this.d.cache.remove(gone).catch(() => undefined);
    } catch (err) {
      this.d.diverged?.();
      if (isView) this.d.log(`remote change ${op.t} does not apply to this mount's view (a local change is pending): ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /**
   * Another mount renamed a file onto a name this mount has changed meanwhile (two editors saving
   * one file by rename at once). The name here shows this mount's version until the hub resolves
   * it, but the file's old name goes now, as at the hub: the file is kept without a name, for the
   * resolution to put under the name it won. Left under its old name, that name blocked the other
   * mount's next file of the same name here, and the next remote rename over the name then
   * removed it with nothing in its place (opens got ENOENT, git committed an empty index).
   * Directories stay where they are (their subtree would go with them).
   */
  private unnameMoved(tree: MemoryMeta, parent: Ino, name: string, ino: Ino): void {
    const inode = tree.getInode(ino);
    if (!inode || inode.kind === 'dir' || tree.lookup(parent, name) !== ino) return;
    tree.removeEntry(parent, name);
    tree.putInode({ ...inode, nlink: Math.max(0, inode.nlink - 1) });
  }

  /**
   * The hub no longer has these files: ops follow inodes, so any name it still has here goes,
   * the inode kept without a name while in use (open, or with changes to ship). A name stays when
   * the hub's removal named what this mount changed meanwhile (another mount renamed the file onto
   * a name this mount had just taken, then removed it: fuzz seed 668), when this mount linked or
   * renamed it locally, or when a snapshot found it renamed here. Left named, it showed a file
   * with no version to read its bytes from (zeros), and its next write shipped over the conflict
   * copy as zeros.
   */
  unnameGone(inos: readonly Ino[]): void {
    for (const tree of [this.d.view, this.d.shipped]) {
      // Most removals applied by name: then nothing is left to look for, and no directory is scanned.
      const named = new Set<Ino>();
      for (const ino of inos) {
        const inode = tree.getInode(ino);
        if (inode && inode.kind !== 'dir' && inode.nlink > 0 && this.d.hub && !this.d.hub.getInode(ino)) named.add(ino);
      }
      if (named.size === 0) continue;
      // One pass over the tree for all of them (a scan per file took seconds for a directory's worth).
      const names: [Ino, string][] = [];
      for (const [dir, entries] of tree.dirs) for (const [name, at] of entries) if (named.has(at)) names.push([dir, name]);
      for (const [dir, name] of names) tree.removeEntry(dir, name);
      for (const ino of named) {
        const inode = tree.getInode(ino)!;
        if (tree === this.d.view && (this.d.inUse?.(ino) ?? false)) tree.putInode({ ...inode, nlink: 0 });
        else {
          tree.deleteInode(ino);
          if (tree === this.d.view) void this.d.cache.remove(ino).catch(() => undefined);
        }
      }
      for (const [dir, name] of names) this.fillFromHub(tree, dir, name);
    }
  }

  /**
   * A name whose file the hub removed, where the hub has another file now: the tree shows that
   * one in the same step, as a rename over the name does. Left empty, the name was missing until
   * the trees were aligned (a remote rename over it that did not apply here, after a local change
   * to the names around it, removed the old file and put nothing in its place: programs opening
   * the name got ENOENT). Only a file the tree lacks, or keeps without a name and unused, and
   * that this mount has not removed itself (its unlink, on its way to the hub, removes it there too).
   */
  private fillFromHub(tree: MemoryMeta, dir: Ino, name: string): void {
    const at = this.d.hub?.lookup(dir, name);
    if (at === undefined || tree.lookup(dir, name) !== undefined || !tree.getInode(dir) || this.d.removedHere?.(at)) return;
    const inode = this.d.hub!.getInode(at);
    const mine = tree.getInode(at);
    if (!inode || inode.kind === 'dir' || (mine && (mine.nlink > 0 || (tree === this.d.view && (this.d.inUse?.(at) ?? false))))) return;
    tree.putInode(mine ? { ...mine, nlink: 1 } : inode);
    if (!mine) tree.markAllocated(at, 0, inode.size);
    tree.addEntry(dir, name, at);
  }

  private dropClean(ino: Ino): void {
    this.d.cache.invalidate(ino).catch((err: unknown) => this.d.log(`cache invalidate of inode ${ino}: ${String(err)}`));
  }

  /**
   * The hub resolved some of this mount's own ops otherwise than the mount applied them (its
   * batch is committed, the replica holds the outcome): the view follows the hub. A losing
   * content edit is kept as a conflict copy and the file shows the winner's content; a name
   * taken by another mount first goes to the conflict name; what a skipped op removed or moved
   * comes back where the hub kept it. `ops`: the batch's ops by journal sequence. Returns the
   * files left without a name here that the hub does not have (the Vfs forgets them when closed).
   */
  resolve(resolutions: readonly Resolution[], committed: CommittedTree, ops: ReadonlyMap<number, WireOp>): Ino[] {
    const get = (ino: Ino): Inode | undefined => committed.getInode(ino);
    const unnamed: Ino[] = [];
    for (const r of resolutions) {
      switch (r.kind) {
        case 'conflict-copy':
        case 'diverted':
          // With later local changes still unacknowledged, the file keeps showing this mount's
          // version (they ship to the copy, the hub diverting them); it follows the hub after.
          if (this.d.editedLocally?.(r.ino)) this.stale.add(r.ino);
          else this.resync(r.ino, get);
          // So does the copy, edited here by its own name while the batch was in flight.
          if (this.d.editedLocally?.(r.copyIno)) this.stale.add(r.copyIno);
          else this.resync(r.copyIno, get);
          if (r.kind === 'conflict-copy') this.link(r.parent, r.name, r.copyIno);
          break;
        case 'renamed': {
          // This mount's inode went to the conflict name; the name it wanted belongs to the winner.
          // Unless a later op of the batch removed it again (the hub no longer has it).
          if (committed.lookup(r.parent, r.name) === r.ino) this.link(r.parent, r.name, r.ino);
          for (const tree of [this.d.view, this.d.shipped]) if (tree.lookup(r.parent, r.wanted) === r.ino) tree.removeEntry(r.parent, r.wanted);
          // Placed elsewhere (its directory was removed by another mount): the name this mount
          // gave it goes too, and so do directories the hub no longer has that are left empty.
          const op = ops.get(r.jseq);
          const asked = op?.t === 'mknode' || op?.t === 'link' ? { parent: op.parent, name: op.name } : op?.t === 'rename' ? { parent: op.newParent, name: op.newName } : undefined;
          if (asked && asked.parent !== r.parent) {
            for (const tree of [this.d.view, this.d.shipped]) if (tree.lookup(asked.parent, asked.name) === r.ino) tree.removeEntry(asked.parent, asked.name);
            this.dropDirsGoneAtHub(asked.parent, committed);
          }
          const winner = committed.lookup(r.parent, r.wanted);
          if (winner !== undefined) {
            // Not here at all (this mount removed it while the other mount filled it): the
            // winner comes back whole, a directory with what it holds at the hub.
            for (const tree of [this.d.view, this.d.shipped]) {
              if (!tree.getInode(winner) && tree.lookup(r.parent, r.wanted) === undefined && tree.getInode(r.parent)) this.restore(tree, r.parent, r.wanted, winner, committed);
            }
            // The winner may be this mount's own file with later changes unshipped (made before
            // this mount's creation that lost the name): it keeps them, and follows the hub once
            // they are acknowledged (a fuzz seed shipped such a file without its last write).
            if (this.d.editedLocally?.(winner)) this.stale.add(winner);
            else this.resync(winner, get);
            this.link(r.parent, r.wanted, winner);
          }
          break;
        }
        case 'skipped': {
          this.d.log(`bridge: the hub skipped journal entry ${r.jseq}: ${r.reason}`);
          const op = ops.get(r.jseq);
          if (op) this.undo(op, committed, unnamed);
        }
      }
    }
    return unnamed;
  }

  /**
   * An op the hub did not apply: names it removed or moved go back to where the hub has them
   * (an unlink of a file another mount changed: the file is back), unless this mount changed
   * the same name again since.
   */
  private undo(op: WireOp, committed: CommittedTree, unnamed: Ino[]): void {
    if (op.t !== 'unlink' && op.t !== 'rmdir' && op.t !== 'rename' && op.t !== 'link' && op.t !== 'mknode') return;
    const places: [Ino, string][] = [[op.parent, op.name]];
    if (op.t === 'rename') places.push([op.newParent, op.newName]);
    for (const tree of [this.d.view, this.d.shipped]) {
      for (const [parent, name] of places) {
        const mine = tree.lookup(parent, name);
        const hubs = committed.lookup(parent, name);
        if (mine === hubs) continue;
        // The name holds what this op put there and the hub did not: it goes.
        if (mine !== undefined && mine === op.ino) {
          tree.removeEntry(parent, name);
          // A link or a creation the hub did not make: one name fewer.
          const inode = tree.getInode(mine);
          if ((op.t === 'link' || op.t === 'mknode') && inode && inode.kind !== 'dir') {
            tree.putInode({ ...inode, nlink: Math.max(0, inode.nlink - 1) });
            if (tree === this.d.view && inode.nlink <= 1 && !committed.getInode(mine)) unnamed.push(mine);
          }
        }
        if (tree.lookup(parent, name) === undefined && hubs !== undefined && tree.getInode(parent)) this.restore(tree, parent, name, hubs, committed);
      }
    }
    // Directories the hub removed meanwhile, which this op kept non-empty here, go once empty.
    for (const [parent] of places) this.dropDirsGoneAtHub(parent, committed);
  }

  /** Puts `ino` (with the subtree of a directory) back under `parent`/`name` as the hub has it. */
  private restore(tree: MemoryMeta, parent: Ino, name: string, ino: Ino, committed: CommittedTree): void {
    const inode = committed.getInode(ino);
    if (!inode) return;
    // Gone here, or kept only as an orphan (open, or the shipped tree's unlinked inode): the hub's attributes.
    if ((tree.getInode(ino)?.nlink ?? 0) === 0) {
      tree.putInode(inode);
      if (inode.kind === 'file') tree.markAllocated(ino, 0, inode.size);
      if (inode.kind === 'dir') for (const [child, childIno] of committed.children(ino)) this.restore(tree, ino, child, childIno, committed);
    }
    tree.addEntry(parent, name, ino);
  }

  /** The view's inode `ino` takes the committed attributes; its clean cache goes. */
  private resync(ino: Ino, committed: (ino: Ino) => Inode | undefined): void {
    const c = committed(ino);
    if (!c) return;
    for (const tree of [this.d.view, this.d.shipped]) {
      const mine = tree.getInode(ino);
      tree.putInode(mine ? { ...mine, size: c.size, mtimeMs: c.mtimeMs, ctimeMs: c.ctimeMs, mode: c.mode } : c);
    }
    this.d.view.markAllocated(ino, 0, c.size);
    this.dropClean(ino);
  }

  /** `dir` and its parents, while the hub no longer has them and they are empty here. */
  private dropDirsGoneAtHub(dir: Ino, committed: CommittedTree): void {
    while (dir !== ROOT_INO && committed.getInode(dir) === undefined) {
      const parent = this.d.view.parentOf(dir);
      if (parent === undefined || this.d.view.hasEntries(dir)) return;
      for (const tree of [this.d.view, this.d.shipped]) {
        const p = tree.parentOf(dir);
        const name = p === undefined ? undefined : [...(tree.entries(p) ?? [])].find(([, ino]) => ino === dir)?.[0];
        if (p !== undefined && name !== undefined && !tree.hasEntries(dir)) {
          tree.removeEntry(p, name);
          tree.deleteInode(dir);
          const up = tree.getInode(p);
          if (up) tree.putInode({ ...up, nlink: Math.max(2, up.nlink - 1) });
        }
      }
      dir = parent;
    }
  }

  private link(parent: Ino, name: string, ino: Ino): void {
    for (const tree of [this.d.view, this.d.shipped]) {
      // A name for a node the tree lacks would list a file nobody can open.
      if (tree.lookup(parent, name) !== undefined || !tree.getInode(parent) || !tree.getInode(ino)) continue;
      tree.addEntry(parent, name, ino);
      // A node kept without a name (made in a directory that was gone at a restart) has one now.
      const inode = tree.getInode(ino);
      if (inode?.nlink === 0) tree.putInode({ ...inode, nlink: inode.kind === 'dir' ? 2 : 1 });
    }
  }

  /**
   * A snapshot while mounted (this mount fell behind the hub's retained feed): what the hub
   * changed between the replica before (`base`) and after (`next`) is merged into the view and
   * the shipped tree, local pending changes and whatever the batch in flight touches kept (see
   * mergeSnapshot). Clean cached data of every
   * file goes: the snapshot does not say which contents changed, and the replica holds them all.
   */
  snapshot(base: MemoryMeta, next: MemoryMeta, inFlight: readonly WireOp[]): void {
    const kept = touchedBy(inFlight);
    const { removed, changed } = mergeSnapshot(this.d.view, base, next, kept, (ino) => this.d.inUse?.(ino) ?? false);
    mergeSnapshot(this.d.shipped, base, next, kept);
    // Files the hub deleted that keep a name here (renamed or linked here since).
    this.unnameGone([...base.inodes.keys()].filter((ino) => !next.getInode(ino)));
    for (const ino of removed) void this.d.cache.remove(ino).catch(() => undefined);
    for (const [ino, inode] of this.d.view.inodes) if (inode.kind === 'file') this.dropClean(ino);
    this.d.log(`bridge: the hub sent a snapshot while mounted: ${changed.length} inode(s) changed, ${removed.length} removed`);
  }
}

