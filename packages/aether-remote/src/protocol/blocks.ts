import type { BlockRef } from '@aether/core/tree/content';
import { BLOCK_BYTES } from '@aether/core/store/sqlite-meta';
import { sha256Hex } from './frames.js';

export interface FileBlocks {
  size: number;
  blocks: BlockRef[];
  /** The data of every block, by hash. */
  chunks: Map<string, Buffer>;
}

/**
 * Cuts a file's content into the store's blocks, the way the store keeps them: the last block is
 * cut to the file's size and all-zero blocks are holes, so the same content always gives the same
 * hashes on every mount and at the hub (which is what makes a re-upload send nothing).
 */
export function blocksOfContent(data: Buffer): FileBlocks {
  const blocks: BlockRef[] = [];
  const chunks = new Map<string, Buffer>();
  for (let idx = 0; idx * BLOCK_BYTES < data.length; idx++) {
    const block = data.subarray(idx * BLOCK_BYTES, Math.min(data.length, (idx + 1) * BLOCK_BYTES));
    if (isZero(block)) continue;
    const hash = sha256Hex(block);
    blocks.push([idx, hash]);
    chunks.set(hash, block);
  }
  return { size: data.length, blocks, chunks };
}

function isZero(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}
