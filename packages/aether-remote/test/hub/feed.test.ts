import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { BridgeClient, FeedEvent } from '../../src/bridge/client.js';
import type { ErrorFrame } from '../../src/protocol/frames.js';
import type { WireEntry } from '../../src/protocol/wire-ops.js';
import { connectClient, content, metricValue, mkdir, mkfile, RawClient, readFeedUntil, ROOT, startHub, STORES } from './helpers.js';
import { Replica } from './replica.js';

/** Uploads `n` batches from `c`: a directory, files with content, a rename and an unlink among them. */
async function makeHistory(c: BridgeClient, n: number, from: { seq: number; ino: number }): Promise<number[]> {
  const base = c.welcome!.inoBase;
  const hubSeqs: number[] = [];
  for (let i = 0; i < n; i++) {
    const entries: WireEntry[] = [];
    const chunks = new Map<string, Buffer>();
    const ino = base + ++from.ino;
    if (i === 0) entries.push(mkdir(++from.seq, ROOT, 'dir', ino));
    else {
      entries.push(mkfile(++from.seq, base + 1, `file-${from.ino}.txt`, ino));
      const body = content(++from.seq, ino, Buffer.alloc(70_000 + i, i));
      entries.push(body.entry);
      for (const [h, d] of body.chunks) chunks.set(h, d);
      if (i % 3 === 0) entries.push({ seq: ++from.seq, op: { t: 'rename', parent: base + 1, name: `file-${from.ino}.txt`, ino, newParent: ROOT, newName: `moved-${from.ino}`, dstIno: 0, flags: 0, timeMs: 2000 } });
      if (i % 4 === 0) entries.push({ seq: ++from.seq, op: { t: 'unlink', parent: base + 1, name: `file-${from.ino - 1}.txt`, ino: ino - 1, timeMs: 2000 } });
    }
    const r = await c.upload({ upToSeq: from.seq, baseSeq: 0, entries, chunks });
    hubSeqs.push(r.hubSeq!);
  }
  return hubSeqs;
}

const entrySeqs = (events: FeedEvent[]) => events.flatMap((e) => (e.kind === 'entry' ? [e.entry.hubSeq] : []));

for (const { kind, skip } of STORES) describe(`the changefeed [${kind}]`, { skip }, () => {
  it('a client follows from any cursor it saw before, then live; entries carry ops, chunk hashes and the author', async () => {
    const { hub } = await startHub({}, kind);
    after(() => hub.close());
    const a = await connectClient(hub.url);
    const seqs = await makeHistory(a, 5, { seq: 0, ino: 0 });
    assert.deepEqual(seqs, [1, 2, 3, 4, 5], 'gap-free, in commit order');
    const b = await connectClient(hub.url, { followFrom: 2 });
    const it = b.feed();
    const got = await readFeedUntil(it, (e) => e.kind === 'entry' && e.entry.hubSeq === 5);
    assert.deepEqual(got.map((e) => e.kind), ['entry', 'entry', 'entry'], 'no snapshot: the cursor is retained');
    assert.deepEqual(entrySeqs(got), [3, 4, 5]);
    const e3 = got[0]!.kind === 'entry' ? got[0]!.entry : undefined;
    assert.equal(e3?.mountId, a.mountId);
    assert.equal(e3?.mountNo, a.welcome!.mountNo);
    const contentOp = e3?.ops.find((o) => o.op.t === 'content')?.op;
    assert.ok(contentOp?.t === 'content' && contentOp.blocks.length === 2 && contentOp.blocks.every(([, h]) => /^[0-9a-f]{64}$/.test(h)));
    await makeHistory(a, 1, { seq: 100, ino: 100 });
    assert.deepEqual(entrySeqs(await readFeedUntil(it, (e) => e.kind === 'entry')), [6]);
    assert.equal(b.feedCursor, 6);
    await a.close();
    await b.close();
  });

  it('a client behind what the feed retains gets a snapshot at one hub sequence, then the feed', async () => {
    const { hub } = await startHub({ feedRetainEntries: 3, pageRows: 4 }, kind);
    after(() => hub.close());
    const a = await connectClient(hub.url);
    const from = { seq: 0, ino: 0 };
    await makeHistory(a, 8, from);
    const c = await connectClient(hub.url, { followFrom: 2 });
    const replica = new Replica();
    const it = c.feed();
    const snap = await readFeedUntil(it, (e) => e.kind === 'snapshot-end');
    assert.deepEqual(snap[0], { kind: 'snapshot-begin', hubSeq: 8 });
    assert.ok(snap.filter((e) => e.kind === 'snapshot-part').length > 3, 'paged');
    for (const e of snap) replica.apply(e);
    assert.equal(replica.cursor, 8);
    await replica.assertEquals(hub);
    assert.equal(await metricValue(hub.registry, 'aether_hub_snapshots_total'), 1);
    // Then the feed goes on from the snapshot's sequence.
    await makeHistory(a, 2, from);
    for (const e of await readFeedUntil(it, (e) => e.kind === 'entry' && e.entry.hubSeq === 10)) replica.apply(e);
    await replica.assertEquals(hub);
    // A cursor inside the retained window needs no snapshot.
    const d = await connectClient(hub.url, { followFrom: 7 });
    assert.deepEqual(entrySeqs(await readFeedUntil(d.feed(), (e) => e.kind === 'entry' && e.entry.hubSeq === 10)), [8, 9, 10]);
    await Promise.all([a.close(), c.close(), d.close()]);
  });

  it('cursor 0 (a new mount) gets a snapshot; a cursor ahead of the hub is refused, and the client refuses that hub (a restored one); a client that followed nothing starts over', async () => {
    const { hub } = await startHub({}, kind);
    after(() => hub.close());
    const a = await connectClient(hub.url);
    // On an empty hub: one snapshot of the root at sequence 0, then the entries, and no second snapshot.
    const first = await connectClient(hub.url, { followFrom: 0 });
    const firstFeed = first.feed();
    const empty = await readFeedUntil(firstFeed, (e) => e.kind === 'snapshot-end');
    assert.deepEqual(empty.map((e) => e.kind), ['snapshot-begin', 'snapshot-part', 'snapshot-end']);
    assert.deepEqual(empty[1]?.kind === 'snapshot-part' && empty[1].part.inodes.map((i) => i.ino), [ROOT]);
    const from = { seq: 0, ino: 0 };
    await makeHistory(a, 1, from);
    assert.deepEqual((await readFeedUntil(firstFeed, () => true)).map((e) => e.kind), ['entry']);
    await first.close();
    assert.equal(await metricValue(hub.registry, 'aether_hub_snapshots_total'), 1);
    await makeHistory(a, 2, from);
    const fresh = await connectClient(hub.url, { followFrom: 0 });
    const replica = new Replica();
    for (const e of await readFeedUntil(fresh.feed(), (e) => e.kind === 'snapshot-end')) replica.apply(e);
    await replica.assertEquals(hub);

    const raw = await RawClient.hello(hub.url);
    raw.c.send({ t: 'follow', cursor: 99 });
    assert.equal(((await raw.c.next((f) => f.t === 'error')) as ErrorFrame).code, 'CURSOR_AHEAD');
    raw.c.close();
    // A client that has seen more than the hub has (a hub restored from a backup) refuses it: a
    // snapshot of the older tree would remove what was committed since, which only mounts still hold.
    const ahead = await connectClient(hub.url, { followFrom: 99 });
    for (let i = 0; i < 200 && ahead.state !== 'refused'; i++) await new Promise((r) => setTimeout(r, 25));
    assert.equal(ahead.state, 'refused');
    assert.match(ahead.problem ?? '', /is behind this mount/);
    assert.equal(ahead.feedCursor, 99);
    // One that has followed nothing yet starts over with a hub.
    const none = await connectClient(hub.url, { followFrom: 0, followHubId: 'another-hub' });
    const events = await readFeedUntil(none.feed(), (e) => e.kind === 'snapshot-end');
    assert.equal(events[0]?.kind, 'reset');
    assert.equal(none.feedCursor, 3);
    await Promise.all([a.close(), fresh.close(), ahead.close(), none.close()]);
  });
});

describe('the changefeed with a full queue', () => {
  it('a mount whose feed queue is full holds the hub\'s feed (its window), not its socket: the chunks each entry waits for, and the pings, still come', async () => {
    // Heartbeats of 300 ms: a socket held unread would be given up within a second.
    const { hub } = await startHub({ heartbeatMs: 300, pageRows: 10 });
    after(() => hub.close());
    const a = await connectClient(hub.url);
    await makeHistory(a, 120, { seq: 0, ino: 0 });
    const b = await connectClient(hub.url, { followFrom: 1, feedBufferMax: 8 });
    let lost = 0;
    b.on('disconnect', () => lost++);
    let most = 0;
    let last = 0;
    for await (const e of b.feed()) {
      most = Math.max(most, b.feedQueued);
      if (e.kind !== 'entry') continue;
      // As a mount applies an entry: its chunks come from the hub first.
      const hashes = e.entry.ops.flatMap((o) => (o.op.t === 'content' ? o.op.blocks.map(([, h]) => h) : []));
      if (hashes.length > 0) assert.equal((await b.fetchChunks(hashes)).size, new Set(hashes).size);
      last = e.entry.hubSeq;
      if (last === 120) break;
      if (e.entry.hubSeq % 20 === 0) await new Promise((r) => setTimeout(r, 400)); // a slow apply: longer than a heartbeat
    }
    assert.equal(last, 120);
    assert.equal(lost, 0, 'never disconnected');
    // The window: the hub never sent more than the queue had room for.
    assert.ok(most <= 8, `${most} entries queued at most`);
    await a.close();
    await b.close();
  });

  it('a second follow while the hub waits for credit in a snapshot starts over from the new cursor: no part without its begin, no entry missing', async () => {
    const { hub } = await startHub({ pageRows: 2, feedRetainEntries: 5 });
    after(() => hub.close());
    const a = await connectClient(hub.url);
    const base = a.welcome!.inoBase;
    for (let i = 1; i <= 30; i++) await a.upload({ upToSeq: i, baseSeq: 0, entries: [mkfile(i, ROOT, `f${i}`, base + i)], chunks: new Map() });
    const { c } = await RawClient.hello(hub.url);
    const seen = (): (string | number)[] => c.frames.map((f) => (f.t === 'entry' ? f.entry.hubSeq : f.t));
    c.send({ t: 'follow', cursor: 0, window: 2 });
    for (let i = 0; i < 100 && seen().length < 2; i++) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 200)); // the hub now waits for credit inside the snapshot
    assert.deepEqual(seen(), ['snapshot-begin', 'snapshot-part'], 'a window of two frames');
    c.send({ t: 'follow', cursor: 28, window: 1000 });
    for (let i = 0; i < 100 && !seen().includes(30); i++) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 200));
    // The old snapshot stops where it was; the feed goes on from 28 (29 and 30 are retained).
    assert.deepEqual(seen(), ['snapshot-begin', 'snapshot-part', 29, 30]);
    c.close();
    await a.close();
  });
});
