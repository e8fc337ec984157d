import assert from 'node:assert/strict';
import { applyOp } from '@aether/core/tree/apply';
import { applyContent, type BlockMapTx, type BlockRef } from '@aether/core/tree/content';
import { MemoryMeta } from '@aether/core/tree/meta';
import type { Op } from '@aether/core/tree/ops';
import type { FeedEvent } from '../../src/bridge/client.js';
import type { Hub } from '../../src/hub/hub.js';
import { treeOf } from './helpers.js';

/** A mount's committed view, as the changefeed builds it: what the mount side will do. */
export class Replica extends MemoryMeta implements BlockMapTx {
  readonly blockMaps = new Map<number, readonly BlockRef[]>();
  cursor = 0;

  replaceBlocks(ino: number, blocks: readonly BlockRef[]): void {
    this.blockMaps.set(ino, blocks);
  }
  override dropContent(ino: number): void {
    this.blockMaps.delete(ino);
  }

  apply(e: FeedEvent): void {
    switch (e.kind) {
      case 'reset':
      case 'snapshot-begin':
        this.inodes.clear();
        this.dirs.clear();
        this.blockMaps.clear();
        return;
      case 'snapshot-part': {
        for (const i of e.part.inodes) this.putInode(i);
        for (const [parent, name, ino] of e.part.dentries) this.addEntry(parent, name, ino);
        const byIno = new Map<number, BlockRef[]>();
        for (const [ino, idx, hash] of e.part.blocks) byIno.set(ino, [...(byIno.get(ino) ?? this.blockMaps.get(ino) ?? []), [idx, hash]]);
        for (const [ino, b] of byIno) this.blockMaps.set(ino, b);
        return;
      }
      case 'snapshot-end':
        this.cursor = e.hubSeq;
        return;
      case 'entry':
        assert.equal(e.entry.hubSeq, this.cursor + 1, 'the changefeed is gap-free and in order');
        for (const { op } of e.entry.ops) {
          if (op.t === 'content') assert.ok(applyContent(this, op));
          else applyOp(this, op as Op, { keepOrphans: false });
        }
        this.cursor = e.entry.hubSeq;
    }
  }

  /** Asserts that this view is exactly the hub's committed tree. */
  async assertEquals(hub: Hub): Promise<void> {
    const tree = await treeOf(hub);
    const inos = [...tree.inodes.keys()].sort((a, b) => a - b);
    assert.deepEqual([...this.inodes.keys()].sort((a, b) => a - b), inos, 'same inodes');
    for (const ino of inos) assert.deepEqual(this.inodes.get(ino), tree.inodes.get(ino), `inode ${ino}`);
    const mine = [...this.dirs].flatMap(([parent, m]) => [...m].map(([name, ino]) => [parent, name, ino] as [number, string, number]));
    const order = (a: [number, string, number], b: [number, string, number]) => a[0] - b[0] || Buffer.compare(Buffer.from(a[1]), Buffer.from(b[1]));
    assert.deepEqual(mine.sort(order), [...tree.dentries].sort(order), 'same names');
    for (const ino of inos) assert.deepEqual(this.blockMaps.get(ino) ?? [], tree.blocks.get(ino) ?? [], `blocks of ${ino}`);
  }
}
