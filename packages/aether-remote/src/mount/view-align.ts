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
 * open here (kept without a name when the hub no longer has it) or a directory holding the hidden
 * name of an open, unlinked file (kept where it is: its open files' I/O goes through its path).
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
  // Directories the hub no longer has that must stay here (they hold an open file's hidden name).
  const keptDirs = new Set<Ino>();
  for (const [ino, t] of tree.inodes) if (t.kind === 'dir' && !committed.inodes.has(ino) && inUse(ino)) keptDirs.add(ino);
  // With the directories above them the hub no longer has: libfuse reaches the hidden name by path.
  for (const dir of [...keptDirs]) {
    for (let up = tree.parentOf(dir); up !== undefined && !committed.inodes.has(up) && !keptDirs.has(up); up = tree.parentOf(up)) keptDirs.add(up);
  }
  for (const [dir, want] of committed.dirs) {
    const have = tree.dirs.get(dir);
    if (!have) continue;
    for (const [name, ino] of [...have]) {
      if (want.get(name) === ino) continue;
      if (!want.has(name) && keptDirs.has(ino)) continue;
      tree.removeEntry(dir, name);
      r.unnamed.push(`${dir}/${name}`);
    }
    for (const [name, ino] of want) {
      if (have.get(name) === ino) continue;
      tree.addEntry(dir, name, ino);
      r.named.push(`${dir}/${name}`);
    }
  }
  // What the hub does not have: open files stay without a name, kept directories where they are
  // (with only what stays), the rest goes.
  const names = new Map<Ino, number>();
  for (const dir of keptDirs) for (const [, ino] of tree.dirs.get(dir) ?? []) names.set(ino, (names.get(ino) ?? 0) + 1);
  for (const [ino, t] of [...tree.inodes]) {
    if (committed.inodes.has(ino)) continue;
    if (keptDirs.has(ino)) continue;
    if (t.kind !== 'dir' && inUse(ino)) {
      const nlink = names.get(ino) ?? 0;
      if (t.nlink !== nlink) {
        tree.putInode({ ...t, nlink });
        r.changed.push(ino);
      }
      continue;
    }
    tree.deleteInode(ino);
    r.dropped.push(ino);
  }
  for (const dir of keptDirs) {
    for (const [name, ino] of [...(tree.dirs.get(dir) ?? [])]) {
      if (tree.getInode(ino)) continue;
      tree.removeEntry(dir, name);
      r.unnamed.push(`${dir}/${name}`);
    }
  }
  return r;
}
