import type { Inode } from '@aether/core/tree/inode';
import type { MemoryMeta } from '@aether/core/tree/meta';
import type { Ino } from '@aether/core/tree/ops';
import type { WireOp } from '../protocol/wire-ops.js';

function sameInode(a: Inode, b: Inode): boolean {
  return (
    a.kind === b.kind &&
    a.mode === b.mode &&
    a.uid === b.uid &&
    a.gid === b.gid &&
    a.size === b.size &&
    a.nlink === b.nlink &&
    a.atimeMs === b.atimeMs &&
    a.mtimeMs === b.mtimeMs &&
    a.ctimeMs === b.ctimeMs &&
    a.target === b.target
  );
}

function* dentries(tree: MemoryMeta): Generator<[Ino, string, Ino]> {
  for (const [parent, names] of tree.dirs) for (const [name, ino] of names) yield [parent, name, ino];
}

/** Names (`parent/name`) and inodes the merge leaves as the tree has them. */
export interface Kept {
  keys: Set<string>;
  inos: Set<Ino>;
}

const key = (parent: Ino, name: string): string => `${parent}/${name}`;

/**
 * What this mount's batch in flight touches. The hub may have committed it before the snapshot,
 * so the snapshot holds it while the base does not: what differs there is this mount's own change
 * (perhaps already undone by a later local op), not another mount's.
 */
export function touchedBy(ops: readonly WireOp[]): Kept {
  const kept: Kept = { keys: new Set(), inos: new Set() };
  for (const op of ops) {
    kept.inos.add(op.ino);
    if (op.t === 'mknode' || op.t === 'link' || op.t === 'unlink' || op.t === 'rmdir' || op.t === 'rename') {
      kept.keys.add(key(op.parent, op.name));
      kept.inos.add(op.parent);
    }
    if (op.t === 'rename') {
      kept.keys.add(key(op.newParent, op.newName));
      kept.inos.add(op.newParent);
      kept.inos.add(op.dstIno);
    }
  }
  return kept;
}

export interface MergeOutcome {
  /** Inodes that left the tree (the cache drops their data). */
  removed: Ino[];
  /** Inodes that took the snapshot's attributes (their clean cached data may be stale). */
  changed: Ino[];
}

/**
 * Brings a snapshot into `tree`, a committed tree with this mount's pending changes on top: a
 * three-way merge with `base` (the committed tree `tree` was built on, the replica before the
 * snapshot) and `next` (the replica after it). Every inode and name the hub changed from `base` to
 * `next` takes `next`'s value, unless `tree` changed that very inode or name locally: a pending
 * change stays, and the hub's conflict rules decide when it ships, as for changefeed entries.
 * `kept`: names and inodes the snapshot may hold this mount's own changes of (its batch in flight).
 * `holdRemoved`: inodes the hub deleted that stay here without a name (open files).
 * Runs synchronously, so file system calls see the tree before or after, never halfway.
 */
export function mergeSnapshot(tree: MemoryMeta, base: MemoryMeta, next: MemoryMeta, kept: Kept, holdRemoved: (ino: Ino) => boolean = () => false): MergeOutcome {
  const changed: Ino[] = [];
  // Inodes first, so that names added below find their inode (and directories their name map).
  for (const [ino, n] of next.inodes) {
    const b = base.getInode(ino);
    if ((b && sameInode(b, n)) || kept.inos.has(ino)) continue;
    const t = tree.getInode(ino);
    // New at the hub: add it. Gone here but in base: deleted locally, the delete ships.
    // In the tree but not in base: created here, the tree is at least as new.
    if (!t ? b !== undefined : !b || !sameInode(t, b)) continue;
    tree.putInode(n);
    if (n.kind === 'file') {
      tree.dropContent(ino);
      tree.markAllocated(ino, 0, n.size);
    }
    changed.push(ino);
  }
  // Names: a key the hub changed takes its new value where the tree still holds the old one.
  const keys = new Map<string, [Ino, string]>();
  for (const [parent, name, ino] of dentries(base)) if (next.lookup(parent, name) !== ino) keys.set(key(parent, name), [parent, name]);
  for (const [parent, name, ino] of dentries(next)) if (base.lookup(parent, name) !== ino) keys.set(key(parent, name), [parent, name]);
  for (const [k, [parent, name]] of keys) {
    if (kept.keys.has(k)) continue;
    const was = base.lookup(parent, name);
    if (tree.lookup(parent, name) !== was) continue;
    const now = next.lookup(parent, name);
    if (was !== undefined) tree.removeEntry(parent, name);
    if (now !== undefined && tree.getInode(now) && tree.getInode(parent)) tree.addEntry(parent, name, now);
  }
  // Inodes the hub deleted go, unless changed here or still named here.
  const named = new Set<Ino>();
  for (const [, , ino] of dentries(tree)) named.add(ino);
  const removed: Ino[] = [];
  for (const [ino, b] of base.inodes) {
    if (next.getInode(ino)) continue;
    const t = tree.getInode(ino);
    if (!t || !sameInode(t, b) || named.has(ino) || kept.inos.has(ino)) continue;
    // Open here: it stays without a name until closed (its handles read on).
    if (holdRemoved(ino)) {
      tree.putInode({ ...t, nlink: 0 });
      continue;
    }
    tree.deleteInode(ino);
    removed.push(ino);
  }
  return { removed, changed };
}
