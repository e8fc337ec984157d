import type { Ino, Kind } from './ops.js';

export interface Inode {
  ino: Ino;
  kind: Kind;
  /** Permission bits (07777); the type bits come from `kind`. */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  nlink: number;
  atimeMs: number;
  mtimeMs: number;
  ctimeMs: number;
  /** Symlink target. */
  target?: string;
}

export const S_IFREG = 0o100000;
export const S_IFDIR = 0o040000;
export const S_IFLNK = 0o120000;

export function typeBits(kind: Kind): number {
  return kind === 'dir' ? S_IFDIR : kind === 'symlink' ? S_IFLNK : S_IFREG;
}

export function kindOfMode(mode: number): Kind | undefined {
  switch (mode & 0o170000) {
    case S_IFDIR:
      return 'dir';
    case S_IFLNK:
      return 'symlink';
    case S_IFREG:
    case 0:
      return 'file';
    default:
      return undefined;
  }
}
