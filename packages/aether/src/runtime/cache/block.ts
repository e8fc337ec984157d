import type { FileHandle } from 'node:fs/promises';
import type { Extent } from './extents.js';
import type { LruNode } from './lru.js';

/** What the persistent index records for a block: its clean pieces and their CRC-32. */
export interface BlockRecord {
  pieces: number[];
  crc: number;
}

/**
 * One fixed-size block of one file. Its bytes live in a sparse file of their own, named with a
 * generation number that is never reused, so a block dropped and created again never shares a
 * file with its predecessor and files can be deleted without coordinating with later writers.
 */
export class Block implements LruNode<Block> {
  extents: Extent[] = [];
  cleanBytes = 0;
  dirtyBytes = 0;
  minDirtySeq = Infinity;
  /** Operations in flight on this block; a pinned block is never evicted or dropped. */
  pins = 0;
  /** False for blocks loaded from the index until their bytes are checked against `record.crc`. */
  verified = true;
  /** The index entry for the current clean pieces; null when it must be recomputed. */
  record: BlockRecord | null = null;
  handle: FileHandle | null = null;
  /**
   * Named by an index on disk: its bytes must change on disk as soon as they change, or an index
   * written before the change would vouch for the old bytes after a crash (README, crash safety).
   */
  indexed = false;
  dead = false;
  lruPrev: Block | null = null;
  lruNext: Block | null = null;
  inLru = false;

  constructor(
    readonly fileId: number,
    readonly index: number,
    public gen: number,
  ) {}
}
