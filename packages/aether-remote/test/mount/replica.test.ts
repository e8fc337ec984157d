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

  it('an entry whose chunks the hub no longer has fails with BRIDGE_CHUNKS_GONE, applies nothing, and a snapshot taken after a reset replaces the tree', async () => {
    const r = new Replica(join(tempDir(), 'replica'), MOUNT, BASE);
    await r.apply({ kind: 'snapshot-begin', hubSeq: 0 }, flaky(new Map(), 0));
    await r.apply({ kind: 'snapshot-part', part: { t: 'snapshot-part', inodes: [inode(1, 'dir')], dentries: [], blocks: [] } }, flaky(new Map(), 0));
    await r.apply({ kind: 'snapshot-end', hubSeq: 0 }, flaky(new Map(), 0));
    const old = blocksOfContent(Buffer.from('reclaimed at the hub'));
    const entry: FeedEntry = {
      hubSeq: 1,
      mountId: OTHER,
      mountNo: 2,
      journalSeq: 2,
      committedMs: 0,
      ops: [
        { jseq: 1, op: { t: 'mknode', parent: 1, name: 'g', ino: 2 * BASE + 1, kind: 'file', mode: 0o644, uid: 0, gid: 0, timeMs: 2 } },
        { jseq: 2, op: { t: 'content', ino: 2 * BASE + 1, size: old.size, blocks: old.blocks, timeMs: 3 } },
      ],
      resolutions: [],
    };
    // The hub answers the get without them (`missing`).
    await assert.rejects(r.apply({ kind: 'entry', entry }, () => Promise.resolve(new Map())), (err: unknown) => err instanceof AetherError && err.code === 'BRIDGE_CHUNKS_GONE');
    assert.equal(r.cursor, 0);
    assert.equal(r.lookup(1, 'g'), undefined);
    const now = blocksOfContent(Buffer.from('what the hub has now'));
    await r.apply({ kind: 'reset' }, flaky(new Map(), 0));
    await r.apply({ kind: 'snapshot-begin', hubSeq: 3 }, flaky(new Map(), 0));
    await r.apply(
      { kind: 'snapshot-part', part: { t: 'snapshot-part', inodes: [inode(1, 'dir'), inode(2 * BASE + 1, 'file', now.size)], dentries: [[1, 'g', 2 * BASE + 1]], blocks: now.blocks.map(([idx, h]) => [2 * BASE + 1, idx, h]) } },
      flaky(new Map(), 0),
    );
    await r.apply({ kind: 'snapshot-end', hubSeq: 3 }, flaky(now.chunks, 0));
    assert.equal(r.cursor, 3);
    assert.equal(r.store.read(2 * BASE + 1, 0, 100).toString(), 'what the hub has now');
    r.close();
  });

  it('marks: a replayed journal entry was made on the last cursor reached before it, across restarts and a journal tail lost in a crash', async () => {
    const dir = join(tempDir(), 'replica');
    const none = flaky(new Map(), 0);
    let r = new Replica(dir, MOUNT, BASE);
    await r.apply({ kind: 'snapshot-begin', hubSeq: 3 }, none);
    await r.apply({ kind: 'snapshot-part', part: { t: 'snapshot-part', inodes: [inode(1, 'dir')], dentries: [], blocks: [] } }, none);
    await r.apply({ kind: 'snapshot-end', hubSeq: 3 }, none);
    let hubSeq = 3;
    const remote = (): Promise<void> => {
      hubSeq++;
      const op = { t: 'mknode' as const, parent: 1, name: `n${hubSeq}`, ino: 2 * BASE + hubSeq, kind: 'dir' as const, mode: 0o755, uid: 0, gid: 0, timeMs: 1 };
      return r.apply({ kind: 'entry', entry: { hubSeq, mountId: OTHER, mountNo: 2, journalSeq: hubSeq, committedMs: 0, ops: [{ jseq: hubSeq, op }], resolutions: [] } }, none);
    };
    await remote(); // cursor 4, before the journal is open: after every entry it holds
    assert.equal(r.baseFor(1), undefined, 'no mark before the journal is followed');
    const journal = { lastSeq: 0, committedSeq: 0 };
    await r.followJournal(journal);
    assert.equal(r.baseFor(1), 4, 'marks made before the journal opened precede its next entries');
    journal.lastSeq = 2; // local entries 1 and 2
    await remote(); // 5
    await remote(); // 6: the same journal position, only the latest counts
    journal.lastSeq = 3;
    await remote(); // 7
    assert.deepEqual([1, 2, 3, 4].map((s) => r.baseFor(s)), [4, 4, 6, 7]);
    r.close();
    // A restart: the marks persist. The journal lost entries 3.. in the crash (it ends at 2), so
    // the mark naming 3 means "after every entry": the next entry 3 is a new one, made after 7.
    r = new Replica(dir, MOUNT, BASE);
    assert.deepEqual([1, 2, 3].map((s) => r.baseFor(s)), [4, 4, 6]);
    const after = { lastSeq: 2, committedSeq: 0 };
    await r.followJournal(after);
    assert.deepEqual([1, 2, 3].map((s) => r.baseFor(s)), [4, 4, 7]);
    // Up to the commit watermark only the latest mark is kept, and it still answers for later entries.
    after.lastSeq = 5;
    after.committedSeq = 2;
    await remote(); // 8
    assert.deepEqual([3, 6].map((s) => r.baseFor(s)), [7, 8]);
    const db = r.store.openReader();
    const rows = (db.prepare('SELECT cursor, head FROM bridge_marks ORDER BY cursor').all() as { cursor: number; head: number }[]).map((m) => [m.cursor, m.head]);
    db.close();
    assert.deepEqual(rows, [[7, 2], [8, 5]]);
    r.close();
  });

  it('bases: a remote change to a file edited here keeps the version it replaces, which the mount reads until it lets go; it survives a restart', async () => {
    const dir = join(tempDir(), 'replica');
    const F = BASE + 1;
    const COPY = BASE + 2;
    const old = blocksOfContent(Buffer.from('old content'));
    const mine = blocksOfContent(Buffer.from('copy of my version'));
    const next = blocksOfContent(Buffer.from('new!'));
    const chunks = new Map([...old.chunks, ...mine.chunks, ...next.chunks]);
    const fetch = flaky(chunks, 0);
    let r = new Replica(dir, MOUNT, BASE);
    await r.apply({ kind: 'snapshot-begin', hubSeq: 1 }, fetch);
    const part = { t: 'snapshot-part' as const, inodes: [inode(1, 'dir'), inode(F, 'file', old.size), inode(COPY, 'file', mine.size)], dentries: [[1, 'f', F], [1, 'c', COPY]] as [number, string, number][], blocks: [...old.blocks.map(([i, h]) => [F, i, h] as [number, number, string]), ...mine.blocks.map(([i, h]) => [COPY, i, h] as [number, number, string])] };
    await r.apply({ kind: 'snapshot-part', part }, fetch);
    await r.apply({ kind: 'snapshot-end', hubSeq: 1 }, fetch);
    const read = (ino: number): string => {
      const out = Buffer.alloc(64);
      return out.subarray(0, r.content.readInto(ino, 0, 64, out, 0)).toString();
    };
    const edited = new Set([F]);
    r.keepBase = (ino) => edited.has(ino);
    const change = (hubSeq: number): FeedEntry => ({ hubSeq, mountId: OTHER, mountNo: 2, journalSeq: hubSeq, committedMs: 0, ops: [{ jseq: hubSeq, op: { t: 'content', ino: F, size: next.size, blocks: next.blocks, timeMs: 5 } }], resolutions: [] });
    await r.apply({ kind: 'entry', entry: change(2) }, fetch);
    assert.equal(r.store.read(F, 0, 64).toString(), 'new!', 'the replica holds the hub\'s version');
    assert.equal(read(F), 'old content', 'the mount reads the version its edits were made on');
    assert.deepEqual(r.baseInodes.map((i) => [i.ino, i.size]), [[F, old.size]]);
    r.close();
    r = new Replica(dir, MOUNT, BASE);
    assert.equal(read(F), 'old content', 'the base survives a restart');
    await r.rebase(F, COPY);
    assert.equal(read(F), 'copy of my version', 'after a conflict copy, later edits were made on the copied version');
    await r.dropBase(F);
    assert.equal(read(F), 'new!');
    edited.clear();
    r.keepBase = (ino) => edited.has(ino);
    await r.apply({ kind: 'entry', entry: change(3) }, fetch);
    assert.equal(read(F), 'new!', 'a file not edited here keeps no base');
    edited.add(F);
    const unlink: FeedEntry = { ...change(4), ops: [{ jseq: 4, op: { t: 'unlink', parent: 1, name: 'f', ino: F, timeMs: 6 } }] };
    await r.apply({ kind: 'entry', entry: unlink }, fetch);
    assert.equal(r.getInode(F), undefined, 'removed from the replica');
    assert.equal(read(F), 'new!', 'an edited file another mount removed still reads');
    assert.deepEqual(r.baseInodes.map((i) => [i.ino, i.kind, i.size]), [[F, 'file', next.size]], 'with its inode, to keep it in the view at a restart');
    await r.dropBase(F);
    r.close();
    r = new Replica(dir, MOUNT, BASE);
    assert.deepEqual(r.baseInodes, [], 'a dropped base stays dropped');
    r.close();
  });

  it('space: a reclaim drops chunks of replaced versions, keeps the tree\'s and a kept base\'s, and the file reads the same', async () => {
    const r = new Replica(join(tempDir(), 'replica'), MOUNT, BASE);
    const F = BASE + 1;
    const versions = ['version one', 'version two', 'version three'].map((t) => blocksOfContent(Buffer.from(t)));
    const fetch = flaky(new Map(versions.flatMap((v) => [...v.chunks])), 0);
    await r.apply({ kind: 'snapshot-begin', hubSeq: 1 }, fetch);
    const [v1, v2, v3] = versions as [(typeof versions)[0], (typeof versions)[0], (typeof versions)[0]];
    await r.apply({ kind: 'snapshot-part', part: { t: 'snapshot-part', inodes: [inode(1, 'dir'), inode(F, 'file', v1.size)], dentries: [[1, 'f', F]], blocks: v1.blocks.map(([i, h]) => [F, i, h]) } }, fetch);
    await r.apply({ kind: 'snapshot-end', hubSeq: 1 }, fetch);
    let edited = false;
    r.keepBase = () => edited;
    const content = (hubSeq: number, v: typeof v1): FeedEntry => ({ hubSeq, mountId: OTHER, mountNo: 2, journalSeq: hubSeq, committedMs: 0, ops: [{ jseq: hubSeq, op: { t: 'content', ino: F, size: v.size, blocks: v.blocks, timeMs: hubSeq } }], resolutions: [] });
    await r.apply({ kind: 'entry', entry: content(2, v2) }, fetch);
    edited = true; // edited here on version two; version three arrives
    await r.apply({ kind: 'entry', entry: content(3, v3) }, fetch);
    const has = (v: typeof v1): boolean => v.blocks.every(([, h]) => r.store.hasChunk(h));
    assert.deepEqual([has(v1), has(v2), has(v3)], [true, true, true]);
    const res = await r.store.reclaimSpace(Number.MAX_SAFE_INTEGER);
    assert.equal(res.droppedChunks, 1);
    assert.deepEqual([has(v1), has(v2), has(v3)], [false, true, true], 'the base\'s chunks stay');
    const out = Buffer.alloc(64);
    assert.equal(out.subarray(0, r.content.readInto(F, 0, 64, out, 0)).toString(), 'version two');
    await r.dropBase(F);
    await r.store.reclaimSpace(Number.MAX_SAFE_INTEGER);
    assert.deepEqual([has(v1), has(v2), has(v3)], [false, false, true]);
    assert.equal(r.store.read(F, 0, 64).toString(), 'version three');
    r.close();
  });

  it('space: a chunk dropped by a reclaim between the fetch and the apply is fetched again, never named without data', async () => {
    const r = new Replica(join(tempDir(), 'replica'), MOUNT, BASE);
    const F = BASE + 1;
    const G = BASE + 2;
    const old = blocksOfContent(Buffer.from('a version that comes back'));
    const other = blocksOfContent(Buffer.from('something else'));
    const all = new Map([...old.chunks, ...other.chunks]);
    const plain = flaky(all, 0);
    await r.apply({ kind: 'snapshot-begin', hubSeq: 1 }, plain);
    await r.apply({ kind: 'snapshot-part', part: { t: 'snapshot-part', inodes: [inode(1, 'dir'), inode(F, 'file', old.size)], dentries: [[1, 'f', F]], blocks: old.blocks.map(([i, h]) => [F, i, h]) } }, plain);
    await r.apply({ kind: 'snapshot-end', hubSeq: 1 }, plain);
    const entry = (hubSeq: number, ino: number, v: typeof old): FeedEntry => ({ hubSeq, mountId: OTHER, mountNo: 2, journalSeq: hubSeq, committedMs: 0, ops: [{ jseq: hubSeq, op: { t: 'content', ino, size: v.size, blocks: v.blocks, timeMs: hubSeq } }], resolutions: [] });
    await r.apply({ kind: 'entry', entry: entry(2, F, other) }, plain); // the old version's chunk is dead now, still stored
    assert.ok(old.blocks.every(([, h]) => r.store.hasChunk(h)));
    // G is made with the old version's chunk (present, dead: not fetched) and a new one (fetched):
    // a reclaim sneaks in while it is fetched and drops the dead one.
    const tail = blocksOfContent(Buffer.from('new tail'));
    const [[, oldHash]] = old.blocks as [[number, string]];
    const [[, tailHash]] = tail.blocks as [[number, string]];
    let reclaimed = false;
    const sneaky = (hashes: string[]): Promise<Map<string, Buffer>> => {
      if (!reclaimed) {
        reclaimed = true;
        void r.store.reclaimSpace(Number.MAX_SAFE_INTEGER);
      }
      return Promise.resolve(new Map(hashes.map((h) => [h, (h === tailHash ? tail.chunks : all).get(h)!])));
    };
    const size = 65536 + 8;
    const e3: FeedEntry = {
      ...entry(3, G, old),
      ops: [
        { jseq: 3, op: { t: 'mknode', parent: 1, name: 'g', ino: G, kind: 'file', mode: 0o644, uid: 0, gid: 0, timeMs: 3 } },
        { jseq: 3, op: { t: 'content', ino: G, size, blocks: [[0, oldHash], [1, tailHash]], timeMs: 3 } },
      ],
    };
    await assert.rejects(r.apply({ kind: 'entry', entry: e3 }, sneaky), /reclaimed before the change naming it applied/);
    assert.equal(r.lookup(1, 'g'), undefined, 'nothing of it applied');
    await r.apply({ kind: 'entry', entry: e3 }, sneaky);
    const out = Buffer.alloc(size);
    assert.equal(r.content.readInto(G, 0, size, out, 0), size);
    assert.equal(out.subarray(0, 25).toString(), 'a version that comes back');
    assert.equal(out.subarray(65536).toString(), 'new tail');
    r.close();
  });
});
