import type { Inode } from '@aether/core/tree/inode';
import type { MemoryMeta } from '@aether/core/tree/meta';
import type { Ino } from '@aether/core/tree/ops';

/** What aligning a tree with the committed one changed. */
export interface AlignResult {
  /** Names added or pointed at another inode. */
  named: string[];
  /** Names removed. */
  unnamed: string[];
  /** Inodes whose attributes changed (size or mtime among them: `contentChanged`), directories' times alone aside. */
  changed: Ino[];
  /** Directories whose times alone changed (the hub's renames touch them, the view's resolutions do not). */
  dirTimes: Ino[];
  /** Files whose size or mtime changed: their clean cached data is stale. */
  contentChanged: Ino[];
  /** Inodes the tree held and the committed tree does not, dropped (their cached data goes). */
  dropped: Ino[];
}

/** Nothing but directory times changed (not worth a log line). */
export const alignedNothing = (r: AlignResult): boolean => r.named.length + r.unnamed.length + r.changed.length + r.dropped.length === 0;

/** Attributes a mount shows as the hub has them (atime is the mount's own). */
function differs(a: Inode, b: Inode): boolean {
  return a.kind !== b.kind || a.mode !== b.mode || a.uid !== b.uid || a.gid !== b.gid || a.size !== b.size || a.nlink !== b.nlink || a.mtimeMs !== b.mtimeMs || a.target !== b.target;
}

/**
 * Makes `tree` (the mount's view, or the drain's tree of what it shipped) name and hold exactly
 * what `committed` (the replica) does. Only sound when the mount has no change the hub has not
 * acknowledged, and none in flight: then every difference is one the op-by-op mirroring of remote
 * changes and resolutions got wrong (two mounts changing the same names at once). `inUse`: a file
 * open here, kept without a name when the hub no longer has it (a directory goes even when it held
 * the hidden name of an open, unlinked file: the Vfs finds those by name).
 */
export function alignTree(tree: MemoryMeta, committed: MemoryMeta, inUse: (ino: Ino) => boolean): AlignResult {
  const r: AlignResult = { named: [], unnamed: [], changed: [], dirTimes: [], contentChanged: [], dropped: [] };
  for (const [ino, c] of committed.inodes) {
    const t = tree.getInode(ino);
    if (t && !differs(t, c)) continue;
    tree.putInode(t ? { ...c, atimeMs: t.atimeMs } : c);
    if (t && c.kind === 'dir' && !differs({ ...t, mtimeMs: c.mtimeMs }, c)) r.dirTimes.push(ino);
    else r.changed.push(ino);
    if (c.kind === 'file' && (!t || t.size !== c.size || t.mtimeMs !== c.mtimeMs)) {
      r.contentChanged.push(ino);
      tree.dropContent(ino);
      tree.markAllocated(ino, 0, c.size);
    }
  }
  for (const [dir, want] of committed.dirs) {
    const have = tree.dirs.get(dir);
    if (!have) continue;
    for (const [name, ino] of [...have]) {
      if (want.get(name) === ino) continue;
      tree.removeEntry(dir, name);
      r.unnamed.push(`${dir}/${name}`);
    }
    for (const [name, ino] of want) {
      if (have.get(name) === ino) continue;
      tree.addEntry(dir, name, ino);
      r.named.push(`${dir}/${name}`);
    }
  }
  // What the hub does not have: open files stay without a name, the rest goes.
  for (const [ino, t] of [...tree.inodes]) {
    if (committed.inodes.has(ino)) continue;
    if (t.kind !== 'dir' && inUse(ino)) {
      if (t.nlink !== 0) {
        tree.putInode({ ...t, nlink: 0 });
        r.changed.push(ino);
      }
      continue;
    }
    tree.deleteInode(ino);
    r.dropped.push(ino);
  }
  return r;
}
