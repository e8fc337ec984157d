import type { MetaTx } from './meta.js';
import type { Ino } from './ops.js';

/** One stored block of a file: its index (offset / block size) and the SHA-256 of its chunk. */
export type BlockRef = readonly [idx: number, hash: string];

/**
 * A file's content as a whole: its size and the chunk of every block that is not a hole. Journal
 * `write` and `truncate` ops carry bytes and offsets; a mount that syncs through a hub coalesces
 * them per file into this form, so the data travels as content-addressed chunks (sent once) and
 * the hub always knows a file's complete content, which is what a conflict copy must hold.
 */
export interface ContentOp {
  t: 'content';
  ino: Ino;
  size: number;
  /** Ascending by index; blocks not listed are holes. */
  blocks: readonly BlockRef[];
  timeMs: number;
}

/** A MetaTx whose content is a map of block chunks (the store; a mount's committed view). */
export interface BlockMapTx extends MetaTx {
  /** Replaces every block of `ino` with `blocks`. */
  replaceBlocks(ino: Ino, blocks: readonly BlockRef[]): void;
}

/** Sets a regular file's content to `op`; returns false (changing nothing) when `op.ino` is not a regular file. */
export function applyContent(tx: BlockMapTx, op: ContentOp): boolean {
  const inode = tx.getInode(op.ino);
  if (inode?.kind !== 'file') return false;
  tx.replaceBlocks(op.ino, op.blocks);
  tx.putInode({ ...inode, size: op.size, mtimeMs: op.timeMs, ctimeMs: op.timeMs });
  return true;
}
