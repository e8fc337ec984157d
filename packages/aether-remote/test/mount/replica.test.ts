import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { AetherError } from '@aether/core/errors';
import type { Inode } from '@aether/core/tree/inode';
import type { FeedEntry } from '../../src/protocol/frames.js';
import { blocksOfContent } from '../../src/protocol/blocks.js';
import { Replica, type ChunkFetcher } from '../../src/mount/replica.js';
import { tempDir } from './harness.js';

const MOUNT = '00000000-0000-4000-8000-000000000001';
const OTHER = '00000000-0000-4000-8000-000000000002';
const BASE = 2 ** 32;

function inode(ino: number, kind: 'dir' | 'file', size = 0): Inode {
  return { ino, kind, mode: kind === 'dir' ? 0o755 : 0o644, uid: 0, gid: 0, size, nlink: kind === 'dir' ? 2 : 1, atimeMs: 1, mtimeMs: 1, ctimeMs: 1 };
}

/** A fetcher that fails `failures` times, then serves `chunks`. */
function flaky(chunks: Map<string, Buffer>, failures: number): ChunkFetcher {
  let left = failures;
  return (hashes) => {
    if (left-- > 0) return Promise.reject(new AetherError('BRIDGE_CLOSED', 'connection lost'));
    return Promise.resolve(new Map(hashes.map((h) => [h, chunks.get(h)!])));
  };
}

describe('the replica', () => {
  it('a snapshot whose chunks could not be fetched is applied whole when retried; the cursor and own inode range persist', async () => {
    const dir = join(tempDir(), 'replica');
    const data = blocksOfContent(Buffer.from('snapshot content'));
    let r = new Replica(dir, MOUNT, BASE);
    assert.equal(r.synced, false);
    await r.apply({ kind: 'snapshot-begin', hubSeq: 5 }, flaky(data.chunks, 0));
    await r.apply(
      {
        kind: 'snapshot-part',
        part: { t: 'snapshot-part', inodes: [inode(1, 'dir'), inode(BASE + 7, 'file', data.size)], dentries: [[1, 'f', BASE + 7]], blocks: data.blocks.map(([idx, h]) => [BASE + 7, idx, h]) },
      },
      flaky(data.chunks, 0),
    );
    const fetch = flaky(data.chunks, 1);
    await assert.rejects(r.apply({ kind: 'snapshot-end', hubSeq: 5 }, fetch));
    assert.equal(r.synced, false, 'nothing of a failed snapshot is applied');
    await r.apply({ kind: 'snapshot-end', hubSeq: 5 }, fetch);
    assert.equal(r.synced, true);
    assert.equal(r.store.read(BASE + 7, 0, 100).toString(), 'snapshot content');
    assert.equal(r.lookup(1, 'f'), BASE + 7);
    r.close();
    r = new Replica(dir, MOUNT, BASE);
    assert.equal(r.cursor, 5, 'the cursor survives a restart');
    assert.equal(r.maxOwnIno, BASE + 7, 'so does the highest inode number of this mount');
    r.close();
  });

  it('an entry that fails is not half applied and applies on retry; own entries raise the acknowledged journal sequence', async () => {
    const r = new Replica(join(tempDir(), 'replica'), MOUNT, BASE);
    await r.apply({ kind: 'snapshot-begin', hubSeq: 0 }, flaky(new Map(), 0));
    await r.apply({ kind: 'snapshot-part', part: { t: 'snapshot-part', inodes: [inode(1, 'dir')], dentries: [], blocks: [] } }, flaky(new Map(), 0));
    await r.apply({ kind: 'snapshot-end', hubSeq: 0 }, flaky(new Map(), 0));
    const body = blocksOfContent(Buffer.from('from the other mount'));
    const other: FeedEntry = {
      hubSeq: 1,
      mountId: OTHER,
      mountNo: 2,
      journalSeq: 9,
      committedMs: 0,
      ops: [
        { jseq: 8, op: { t: 'mknode', parent: 1, name: 'g', ino: 2 * BASE + 1, kind: 'file', mode: 0o644, uid: 0, gid: 0, timeMs: 2 } },
        { jseq: 9, op: { t: 'content', ino: 2 * BASE + 1, size: body.size, blocks: body.blocks, timeMs: 3 } },
      ],
      resolutions: [],
    };
    const seen: string[] = [];
    r.onRemoteOps = (ops) => seen.push(...ops.map((o) => o.t));
    const fetch = flaky(body.chunks, 1);
    await assert.rejects(r.apply({ kind: 'entry', entry: other }, fetch));
    assert.equal(r.cursor, 0);
    assert.equal(r.lookup(1, 'g'), undefined);
    await r.apply({ kind: 'entry', entry: other }, fetch);
    assert.equal(r.cursor, 1);
    assert.equal(r.store.read(2 * BASE + 1, 0, 100).toString(), 'from the other mount');
    assert.deepEqual(seen, ['mknode', 'content'], "other mounts' ops go on to the view");
    assert.equal(r.ownJournalSeq, 0);
    const own: FeedEntry = { hubSeq: 2, mountId: MOUNT, mountNo: 1, journalSeq: 4, committedMs: 0, ops: [{ jseq: 4, op: { t: 'mknode', parent: 1, name: 'd', ino: BASE + 3, kind: 'dir', mode: 0o755, uid: 0, gid: 0, timeMs: 4 } }], resolutions: [] };
    await r.apply({ kind: 'entry', entry: own }, fetch);
    assert.equal(r.ownJournalSeq, 4);
    assert.equal(r.maxOwnIno, BASE + 3);
    assert.deepEqual(seen, ['mknode', 'content'], 'own ops are already in the view');
    await assert.rejects(r.apply({ kind: 'entry', entry: { ...own, hubSeq: 4 } }, fetch), /gap/);
    r.close();
  });
});
