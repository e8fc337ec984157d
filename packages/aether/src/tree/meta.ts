import type { Inode } from './inode.js';
import { ROOT_INO, type Ino } from './ops.js';
import { AllocatedRanges } from './allocated-ranges.js';

/**
 * The metadata a tree is made of, behind one interface so that the same apply logic runs on the
 * mount's in-memory view and on the SQLite store.
 */
export interface MetaTx {
  getInode(ino: Ino): Inode | undefined;
  putInode(inode: Inode): void;
  deleteInode(ino: Ino): void;
  lookup(parent: Ino, name: string): Ino | undefined;
  addEntry(parent: Ino, name: string, ino: Ino): void;
  removeEntry(parent: Ino, name: string): void;
  hasEntries(dir: Ino): boolean;
  /** The directory holding `dir` (directories have exactly one parent). */
  parentOf(dir: Ino): Ino | undefined;
  /** Content hooks: the store keeps file data; the in-memory view only tracks sizes. */
  writeContent(ino: Ino, offset: number, data: Buffer): void;
  truncateContent(ino: Ino, size: number): void;
  dropContent(ino: Ino): void;
}

/** The unit in which the view counts a file's allocated bytes (st_blocks): a page, like local file systems. */
export const ALLOC_UNIT_BYTES = 4096;

/** An in-memory MetaTx: the mount's live view (committed store state plus pending journal ops). */
export class MemoryMeta implements MetaTx {
  readonly inodes = new Map<Ino, Inode>();
  readonly dirs = new Map<Ino, Map<string, Ino>>();
  private readonly dirParents = new Map<Ino, Ino>();
  /** Units of each file that hold data (sparse files report few blocks). */
  private readonly allocated = new Map<Ino, AllocatedRanges>();

  getInode(ino: Ino): Inode | undefined {
    return this.inodes.get(ino);
  }
  putInode(inode: Inode): void {
    this.inodes.set(inode.ino, inode);
    if (inode.kind === 'dir' && !this.dirs.has(inode.ino)) this.dirs.set(inode.ino, new Map());
  }
  deleteInode(ino: Ino): void {
    this.inodes.delete(ino);
    this.dirs.delete(ino);
    this.allocated.delete(ino);
  }
  lookup(parent: Ino, name: string): Ino | undefined {
    return this.dirs.get(parent)?.get(name);
  }
  addEntry(parent: Ino, name: string, ino: Ino): void {
    this.dirs.get(parent)?.set(name, ino);
    if (this.dirs.has(ino)) this.dirParents.set(ino, parent);
  }
  removeEntry(parent: Ino, name: string): void {
    const ino = this.dirs.get(parent)?.get(name);
    this.dirs.get(parent)?.delete(name);
    if (ino !== undefined && this.dirParents.get(ino) === parent) this.dirParents.delete(ino);
  }
  parentOf(dir: Ino): Ino | undefined {
    return this.dirParents.get(dir);
  }
  /** The path of directory `dir` (its names up the parent chain), if it is attached to the root. */
  pathOfDir(dir: Ino): string | undefined {
    const names: string[] = [];
    for (let at = dir, depth = 0; at !== ROOT_INO; depth++) {
      const parent = this.parentOf(at);
      if (parent === undefined || depth > 4096) return undefined;
      let name: string | undefined;
      for (const [n, i] of this.entries(parent) ?? []) if (i === at) name = n;
      if (name === undefined) return undefined;
      names.push(name);
      at = parent;
    }
    return `/${names.reverse().join('/')}`;
  }
  hasEntries(dir: Ino): boolean {
    return (this.dirs.get(dir)?.size ?? 0) > 0;
  }
  entries(dir: Ino): IterableIterator<[string, Ino]> | undefined {
    return this.dirs.get(dir)?.entries();
  }
  writeContent(ino: Ino, offset: number, data: Buffer): void {
    this.markAllocated(ino, offset, data.length);
  }
  truncateContent(ino: Ino, size: number): void {
    this.allocated.get(ino)?.truncate(Math.ceil(size / ALLOC_UNIT_BYTES));
  }
  dropContent(ino: Ino): void {
    this.allocated.delete(ino);
  }

  /** Records [offset, offset + length) of `ino` as holding data (writes, and blocks loaded from the store). */
  markAllocated(ino: Ino, offset: number, length: number): void {
    if (length <= 0) return;
    let ranges = this.allocated.get(ino);
    if (!ranges) this.allocated.set(ino, (ranges = new AllocatedRanges()));
    ranges.mark(Math.floor(offset / ALLOC_UNIT_BYTES), Math.ceil((offset + length) / ALLOC_UNIT_BYTES));
  }

  /** Bytes of `ino` that hold data, at most its size: st_blocks is this in 512-byte units. */
  allocatedBytes(ino: Ino): number {
    const size = this.inodes.get(ino)?.size ?? 0;
    return Math.min(size, (this.allocated.get(ino)?.units ?? 0) * ALLOC_UNIT_BYTES);
  }
}
