import type { Inode } from './inode.js';
import type { MetaTx } from './meta.js';
import { RENAME_EXCHANGE, RENAME_NOREPLACE, type Ino, type Op } from './ops.js';

/** The POSIX error an op fails with, as the name FUSE answers with. */
export type Errno = 'ENOENT' | 'EEXIST' | 'ENOTDIR' | 'EISDIR' | 'ENOTEMPTY' | 'EINVAL' | 'ENAMETOOLONG' | 'EPERM' | 'EMLINK';

export const NAME_MAX_BYTES = 255;

export class TreeError extends Error {
  constructor(readonly errno: Errno, message: string) {
    super(`${errno}: ${message}`);
    this.name = 'TreeError';
  }
}

function fail(errno: Errno, message: string): never {
  throw new TreeError(errno, message);
}

function must(tx: MetaTx, ino: Ino): Inode {
  return tx.getInode(ino) ?? fail('ENOENT', `no inode ${ino}`);
}

function dirOf(tx: MetaTx, ino: Ino): Inode {
  const d = must(tx, ino);
  if (d.kind !== 'dir') fail('ENOTDIR', `inode ${ino} is not a directory`);
  return d;
}

function checkName(name: string): void {
  if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) fail('EINVAL', `invalid name ${JSON.stringify(name)}`);
  if (Buffer.byteLength(name) > NAME_MAX_BYTES) fail('ENAMETOOLONG', 'name longer than 255 bytes');
}

function touchDir(tx: MetaTx, dir: Inode, timeMs: number, nlinkDelta = 0): void {
  tx.putInode({ ...dir, mtimeMs: timeMs, ctimeMs: timeMs, nlink: dir.nlink + nlinkDelta });
}

/** Drops one link of `ino`; an inode left with no link is deleted unless the mount keeps it open. */
function dropLink(tx: MetaTx, inode: Inode, timeMs: number, keepOrphans: boolean): void {
  const nlink = inode.kind === 'dir' ? 0 : inode.nlink - 1;
  if (nlink > 0 || keepOrphans) {
    tx.putInode({ ...inode, nlink, ctimeMs: timeMs });
    return;
  }
  tx.deleteInode(inode.ino);
  tx.dropContent(inode.ino);
}

/** True when `ino` is `ancestor` or lies below it. */
function isWithin(tx: MetaTx, ino: Ino, ancestor: Ino): boolean {
  for (let cur: Ino | undefined = ino, hops = 0; cur !== undefined && hops < 100_000; cur = tx.parentOf(cur), hops++) {
    if (cur === ancestor) return true;
  }
  return false;
}

export interface ApplyOptions {
  /**
   * Keep inodes whose last name is removed (nlink 0) until a `forget` op: the mount does this so
   * an unlinked file that is still open stays readable. Orphans are purged at the next start.
   */
  keepOrphans: boolean;
}

/** The inode a `mknode` op makes, before any name links it (nlink 0). */
export function nodeOf(op: Extract<Op, { t: 'mknode' }>): Inode {
  return {
    ino: op.ino,
    kind: op.kind,
    mode: op.mode & 0o7777,
    uid: op.uid,
    gid: op.gid,
    size: op.kind === 'symlink' ? Buffer.byteLength(op.target ?? '') : 0,
    nlink: 0,
    atimeMs: op.timeMs,
    mtimeMs: op.timeMs,
    ctimeMs: op.timeMs,
    ...(op.kind === 'symlink' ? { target: op.target ?? '' } : {}),
  };
}

/** Applies `op` to `tx`, or throws TreeError with the errno POSIX prescribes, changing nothing. */
export function applyOp(tx: MetaTx, op: Op, opts: ApplyOptions): void {
  switch (op.t) {
    case 'mknode': {
      checkName(op.name);
      const parent = dirOf(tx, op.parent);
      if (tx.lookup(op.parent, op.name) !== undefined) fail('EEXIST', `${op.name} exists`);
      const isDir = op.kind === 'dir';
      tx.putInode({ ...nodeOf(op), nlink: isDir ? 2 : 1 });
      tx.addEntry(op.parent, op.name, op.ino);
      touchDir(tx, parent, op.timeMs, isDir ? 1 : 0);
      return;
    }
    case 'link': {
      checkName(op.name);
      const parent = dirOf(tx, op.parent);
      const inode = must(tx, op.ino);
      if (inode.kind === 'dir') fail('EPERM', 'hard links to directories are not allowed');
      if (tx.lookup(op.parent, op.name) !== undefined) fail('EEXIST', `${op.name} exists`);
      tx.addEntry(op.parent, op.name, op.ino);
      tx.putInode({ ...inode, nlink: inode.nlink + 1, ctimeMs: op.timeMs });
      touchDir(tx, parent, op.timeMs);
      return;
    }
    case 'unlink': {
      const parent = dirOf(tx, op.parent);
      const ino = tx.lookup(op.parent, op.name) ?? fail('ENOENT', `${op.name} not found`);
      const inode = must(tx, ino);
      if (inode.kind === 'dir') fail('EISDIR', `${op.name} is a directory`);
      tx.removeEntry(op.parent, op.name);
      dropLink(tx, inode, op.timeMs, opts.keepOrphans);
      touchDir(tx, parent, op.timeMs);
      return;
    }
    case 'rmdir': {
      const parent = dirOf(tx, op.parent);
      const ino = tx.lookup(op.parent, op.name) ?? fail('ENOENT', `${op.name} not found`);
      const inode = must(tx, ino);
      if (inode.kind !== 'dir') fail('ENOTDIR', `${op.name} is not a directory`);
      if (tx.hasEntries(ino)) fail('ENOTEMPTY', `${op.name} is not empty`);
      tx.removeEntry(op.parent, op.name);
      tx.deleteInode(ino);
      touchDir(tx, parent, op.timeMs, -1);
      return;
    }
    case 'rename':
      applyRename(tx, op, opts);
      return;
    case 'write': {
      const inode = must(tx, op.ino);
      if (inode.kind !== 'file') fail('EISDIR', `inode ${op.ino} is not a regular file`);
      const end = op.offset + op.data.length;
      // The inode first: a store refuses an inode it cannot keep, and then no byte may have changed.
      tx.putInode({ ...inode, size: Math.max(inode.size, op.data.length > 0 ? end : inode.size), mtimeMs: op.timeMs, ctimeMs: op.timeMs });
      tx.writeContent(op.ino, op.offset, op.data);
      return;
    }
    case 'truncate': {
      const inode = must(tx, op.ino);
      if (inode.kind === 'dir') fail('EISDIR', `inode ${op.ino} is a directory`);
      if (inode.kind !== 'file') fail('EINVAL', `inode ${op.ino} is not a regular file`);
      tx.putInode({ ...inode, size: op.size, mtimeMs: op.timeMs, ctimeMs: op.timeMs });
      tx.truncateContent(op.ino, op.size);
      return;
    }
    case 'setattr': {
      const inode = must(tx, op.ino);
      tx.putInode({
        ...inode,
        mode: op.mode !== undefined ? op.mode & 0o7777 : inode.mode,
        uid: op.uid ?? inode.uid,
        gid: op.gid ?? inode.gid,
        atimeMs: op.atimeMs ?? inode.atimeMs,
        mtimeMs: op.mtimeMs ?? inode.mtimeMs,
        ctimeMs: op.timeMs,
      });
      return;
    }
    case 'forget': {
      const inode = tx.getInode(op.ino);
      if (inode && inode.nlink === 0) {
        tx.deleteInode(op.ino);
        tx.dropContent(op.ino);
      }
      return;
    }
  }
}

function applyRename(tx: MetaTx, op: Op & { t: 'rename' }, opts: ApplyOptions): void {
  checkName(op.newName);
  const srcDir = dirOf(tx, op.parent);
  dirOf(tx, op.newParent);
  const srcIno = tx.lookup(op.parent, op.name) ?? fail('ENOENT', `${op.name} not found`);
  const src = must(tx, srcIno);
  const dstIno = tx.lookup(op.newParent, op.newName);
  if (op.flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE) || (op.flags & RENAME_NOREPLACE && op.flags & RENAME_EXCHANGE)) fail('EINVAL', 'unsupported rename flags');
  if (src.kind === 'dir' && isWithin(tx, op.newParent, srcIno)) fail('EINVAL', 'cannot move a directory into itself');
  if (op.flags & RENAME_NOREPLACE && dstIno !== undefined) fail('EEXIST', `${op.newName} exists`);
  if (op.flags & RENAME_EXCHANGE) {
    if (dstIno === undefined) fail('ENOENT', `${op.newName} not found`);
    const dst = must(tx, dstIno);
    if (dst.kind === 'dir' && isWithin(tx, op.parent, dstIno)) fail('EINVAL', 'cannot move a directory into itself');
    tx.removeEntry(op.parent, op.name);
    tx.removeEntry(op.newParent, op.newName);
    tx.addEntry(op.parent, op.name, dstIno);
    tx.addEntry(op.newParent, op.newName, srcIno);
    const dirDelta = (src.kind === 'dir' ? 1 : 0) - (dst.kind === 'dir' ? 1 : 0);
    tx.putInode({ ...src, ctimeMs: op.timeMs });
    tx.putInode({ ...must(tx, dstIno), ctimeMs: op.timeMs });
    if (op.parent !== op.newParent) {
      touchDir(tx, must(tx, op.parent), op.timeMs, -dirDelta);
      touchDir(tx, must(tx, op.newParent), op.timeMs, dirDelta);
    } else touchDir(tx, srcDir, op.timeMs);
    return;
  }
  if (dstIno === srcIno) return; // Same file under both names: POSIX says do nothing.
  if (dstIno !== undefined) {
    const dst = must(tx, dstIno);
    if (src.kind === 'dir' && dst.kind !== 'dir') fail('ENOTDIR', `${op.newName} is not a directory`);
    if (src.kind !== 'dir' && dst.kind === 'dir') fail('EISDIR', `${op.newName} is a directory`);
    if (dst.kind === 'dir' && tx.hasEntries(dstIno)) fail('ENOTEMPTY', `${op.newName} is not empty`);
    tx.removeEntry(op.newParent, op.newName);
    if (dst.kind === 'dir') {
      tx.deleteInode(dstIno);
      touchDir(tx, must(tx, op.newParent), op.timeMs, -1);
    } else dropLink(tx, dst, op.timeMs, opts.keepOrphans);
  }
  tx.removeEntry(op.parent, op.name);
  tx.addEntry(op.newParent, op.newName, srcIno);
  tx.putInode({ ...must(tx, srcIno), ctimeMs: op.timeMs });
  const moved = src.kind === 'dir' && op.parent !== op.newParent ? 1 : 0;
  touchDir(tx, must(tx, op.parent), op.timeMs, -moved);
  if (op.parent !== op.newParent) touchDir(tx, must(tx, op.newParent), op.timeMs, moved);
}
