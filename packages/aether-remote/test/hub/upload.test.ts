import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { encodeChunkFrame, type AckFrame, type EntryFrame, type MissingFrame } from '../../src/protocol/frames.js';
import { connectClient, content, fileBatch, listDir, metricValue, mkfile, newStore, RawClient, readFeedUntil, readFile, ROOT, startHub, STORES } from './helpers.js';

for (const { kind, skip } of STORES) describe(`uploads: idempotent commits and chunk dedup [${kind}]`, { skip }, async () => {
  const { hub } = await startHub({}, kind);
  after(() => hub.close());

  it('a batch re-sent after a reconnect is acknowledged again and applied once', async () => {
    const id = randomUUID();
    let { c, welcome } = await RawClient.hello(hub.url, id);
    const ino = welcome.inoBase + 1;
    const body = content(2, ino, Buffer.from('exactly once'));
    const batch = { t: 'batch', id: 1, baseSeq: 0, upToSeq: 2, entries: [mkfile(1, ROOT, 'once.txt', ino), body.entry] };
    for (const [h, d] of body.chunks) c.sendBinary(encodeChunkFrame(h, d));
    c.send(batch);
    const first = (await c.next((f) => f.t === 'ack')) as AckFrame;
    assert.equal(first.duplicate, false);
    assert.equal(first.journalSeq, 2);
    assert.equal(typeof first.hubSeq, 'number');
    const seqAfterFirst = hub.hubSeq;
    // The ack is "lost": the mount reconnects and sends the same batch again.
    c.close();
    ({ c, welcome } = await RawClient.hello(hub.url, id));
    assert.equal(welcome.appliedSeq, 2);
    c.send(batch);
    const again = (await c.next((f) => f.t === 'ack')) as AckFrame;
    assert.deepEqual(again, { t: 'ack', id: 1, journalSeq: 2, hubSeq: null, duplicate: true, resolutions: [] });
    assert.equal(hub.hubSeq, seqAfterFirst, 'no new changefeed entry');
    assert.equal(await metricValue(hub.registry, 'aether_hub_duplicate_batches_total'), 1);
    assert.deepEqual([...(await listDir(hub, ROOT)).keys()], ['once.txt']);
    assert.equal((await readFile(hub, ino)).toString(), 'exactly once');

    // A re-batched upload overlapping what is committed: only the new entries apply.
    const mk = (seq: number) => mkfile(seq, ROOT, `f${seq}`, welcome.inoBase + seq);
    c.send({ t: 'batch', id: 2, baseSeq: 0, upToSeq: 6, entries: [mk(3), mk(4), mk(5), mk(6)] });
    await c.next((f) => f.t === 'ack' && f.id === 2);
    c.send({ t: 'batch', id: 3, baseSeq: 0, upToSeq: 8, entries: [mk(5), mk(6), mk(7), mk(8)] });
    const overlap = (await c.next((f) => f.t === 'ack' && f.id === 3)) as AckFrame;
    assert.equal(overlap.journalSeq, 8);
    assert.deepEqual(overlap.resolutions, [], 'no EEXIST: 5 and 6 were skipped, not re-applied');
    c.send({ t: 'follow', cursor: overlap.hubSeq! - 1 });
    const entry = ((await c.next((f) => f.t === 'entry')) as EntryFrame).entry;
    assert.deepEqual(
      entry.ops.map((o) => o.jseq),
      [7, 8],
    );
    // A batch whose entries were all coalesced away still advances the acknowledged sequence.
    c.send({ t: 'batch', id: 4, baseSeq: 0, upToSeq: 12, entries: [] });
    const empty = (await c.next((f) => f.t === 'ack' && f.id === 4)) as AckFrame;
    assert.deepEqual([empty.journalSeq, empty.hubSeq, empty.duplicate], [12, null, false]);
    c.close();
    assert.equal((await RawClient.hello(hub.url, id)).welcome.appliedSeq, 12);
  });

  it('content the hub already has is not uploaded again: no chunk bytes reach the hub', async () => {
    const a = await connectClient(hub.url);
    const b = await connectClient(hub.url, { zeroMaskKey: true });
    const data = randomBytes(300_000);
    const chunkBytesIn = () => metricValue(hub.registry, 'aether_hub_bytes_in_total', { kind: 'chunk' });
    const controlBytesIn = () => metricValue(hub.registry, 'aether_hub_bytes_in_total', { kind: 'control' });
    const chunkCount = await hub.storage.countChunks();

    const in0 = await chunkBytesIn();
    const ra = await a.upload(fileBatch(1, ROOT, 'big-a', a.welcome!.inoBase + 1, data));
    assert.equal(ra.chunksSent, 5);
    assert.equal(ra.chunkBytesSent, 300_000);
    const in1 = await chunkBytesIn();
    assert.equal(in1 - in0, 300_000 + 5 * 33, 'data plus a 33-byte header per chunk frame');
    assert.equal(await hub.storage.countChunks(), chunkCount + 5);

    // Another mount uploads the same content under another name.
    const ctl1 = await controlBytesIn();
    const inoB = b.welcome!.inoBase + 1;
    const batchB = fileBatch(1, ROOT, 'big-b', inoB, data);
    const rb = await b.upload(batchB);
    assert.equal(rb.chunksSent, 0);
    assert.equal(rb.chunkBytesSent, 0);
    assert.equal(await chunkBytesIn(), in1, 'not one chunk byte more');
    assert.ok((await controlBytesIn()) > ctl1, 'the have/batch exchange did happen');
    assert.equal(await hub.storage.countChunks(), chunkCount + 5);
    assert.ok((await readFile(hub, inoB)).equals(data));
    assert.equal(await metricValue(b.registry, 'aether_bridge_chunks_skipped_total'), 5);

    // Downloads: every block of the file, and nothing for a hash the hub lacks.
    const hashes = [...batchB.chunks.keys()];
    const got = await b.fetchChunks([...hashes, 'f'.repeat(64)]);
    assert.equal(got.size, 5);
    assert.ok(Buffer.concat(hashes.map((h) => got.get(h)!)).equals(data));
    await a.close();
    await b.close();
  });

  it('a commit that fails inside the hub is sent again after a reconnect; a batch the hub can never take is refused and the next goes', async () => {
    const { hub: small } = await startHub({ maxStagedBytes: 100_000 }, kind);
    const c = await connectClient(small.url);
    try {
      const real = small.storage.commit.bind(small.storage);
      let failures = 1;
      small.storage.commit = (req) => (failures-- > 0 ? Promise.reject(new Error('disk full (simulated)')) : real(req));
      const attempts = await metricValue(c.registry, 'aether_bridge_connect_attempts_total');
      const ino = c.welcome!.inoBase + 1;
      const body = content(2, ino, Buffer.from('second time lucky'));
      const r = await c.upload({ upToSeq: 2, baseSeq: 0, entries: [mkfile(1, ROOT, 'retried', ino), body.entry], chunks: body.chunks });
      assert.equal(r.duplicate, false);
      assert.equal((await readFile(small, ino)).toString(), 'second time lucky');
      assert.equal(await metricValue(small.registry, 'aether_hub_rejected_total', { reason: 'INTERNAL' }), 1);
      assert.equal(await metricValue(c.registry, 'aether_bridge_connect_attempts_total'), attempts + 1, 'it reconnected once');

      const tooBig = content(4, ino + 1, randomBytes(150_000));
      const refused = c.upload({ upToSeq: 4, baseSeq: 0, entries: [mkfile(3, ROOT, 'too-big', ino + 1), tooBig.entry], chunks: tooBig.chunks });
      const fine = content(6, ino + 2, Buffer.from('next'));
      const next = c.upload({ upToSeq: 6, baseSeq: 0, entries: [mkfile(5, ROOT, 'next', ino + 2), fine.entry], chunks: fine.chunks });
      await assert.rejects(refused, (e: Error & { code?: string }) => e.code === 'BRIDGE_REJECTED' && /needs 150000 bytes of new chunks/.test(e.message));
      assert.equal((await next).journalSeq, 6);
      assert.deepEqual([...(await listDir(small, ROOT)).keys()].sort(), ['next', 'retried']);
    } finally {
      await c.close();
      await small.close();
    }
  });

  it('a have, a get or a feed page the hub fails to answer (its database errs) fails and is tried again: nothing waits for ever', async () => {
    const { hub: h } = await startHub({}, kind);
    const c = await connectClient(h.url);
    const follower = await connectClient(h.url, { followFrom: 0 });
    try {
      const feed = follower.feed();
      await readFeedUntil(feed, (e) => e.kind === 'snapshot-end');
      const storage = h.storage;
      const failOnce = <K extends 'missingChunks' | 'readChunk' | 'feedPage'>(name: K): void => {
        const real = storage[name].bind(storage) as (...args: unknown[]) => Promise<unknown>;
        let failures = 1;
        (storage as unknown as Record<K, (...args: unknown[]) => Promise<unknown>>)[name] = (...args) => (failures-- > 0 ? Promise.reject(new Error(`${name}: connection terminated (simulated)`)) : real(...args));
      };
      const first = await c.upload(fileBatch(1, ROOT, 'first', c.welcome!.inoBase + 2, Buffer.from('first')));
      await readFeedUntil(feed, (e) => e.kind === 'entry' && e.entry.hubSeq === first.hubSeq);
      // The have before a batch: refused with its id, so the upload goes again after a reconnect.
      failOnce('missingChunks');
      // The follower's next feed page: refused without an id, so the follower reconnects and goes
      // on from its cursor.
      failOnce('feedPage');
      const ino = c.welcome!.inoBase + 1;
      const r = await c.upload(fileBatch(3, ROOT, 'after-a-failed-have', ino, Buffer.from('arrives')));
      assert.equal(r.duplicate, false);
      assert.ok((await readFile(h, ino)).equals(Buffer.from('arrives')));
      await readFeedUntil(feed, (e) => e.kind === 'entry' && e.entry.hubSeq === r.hubSeq, 10_000);
      // A download the hub fails to answer is refused, not left waiting; the next one works.
      failOnce('readChunk');
      const hash = [...content(2, ino, Buffer.from('arrives')).chunks.keys()][0]!;
      await assert.rejects(c.fetchChunks([hash]), (e: Error & { code?: string }) => e.code === 'BRIDGE_REJECTED' && /INTERNAL/.test(e.message));
      assert.ok((await c.fetchChunks([hash])).get(hash)?.equals(Buffer.from('arrives')));
      assert.equal(await metricValue(h.registry, 'aether_hub_rejected_total', { reason: 'INTERNAL' }), 3);
    } finally {
      await Promise.all([c.close(), follower.close()]);
      await h.close();
    }
  });

  it('asks before sending: have answers with exactly the chunks the hub lacks', async () => {
    const { c } = await RawClient.hello(hub.url);
    const known = content(1, 1, Buffer.from('exactly once'));
    const fresh = content(1, 1, randomBytes(100));
    c.send({ t: 'have', id: 5, hashes: [...known.chunks.keys(), ...fresh.chunks.keys()] });
    assert.deepEqual(((await c.next((f) => f.t === 'missing')) as MissingFrame).hashes, [...fresh.chunks.keys()]);
    c.close();
  });
});

describe('uploads to a hub whose pack file was damaged on disk [embedded]', () => {
  it('a chunk whose copy reads back wrong counts as missing: the next upload of the same data sends it, and both files read it', async () => {
    const store = await newStore('embedded');
    const first = (await startHub({}, 'embedded', store)).hub;
    const data = randomBytes(300_000);
    const before = await connectClient(first.url);
    const inoA = before.welcome!.inoBase + 1;
    assert.equal((await before.upload(fileBatch(1, ROOT, 'big-a', inoA, data))).chunksSent, 5);
    await before.close();
    await first.close();
    // Damaged while the hub was stopped (a chunk it stored or checked itself is not read back again).
    const packs = join((store.opts as { dataDir: string }).dataDir, 'packs');
    for (const name of readdirSync(packs)) writeFileSync(join(packs, name), Buffer.alloc(8, 0xff), { flag: 'r+' });
    const { hub } = await startHub({}, 'embedded', store);
    after(() => hub.close());
    const a = await connectClient(hub.url);
    after(() => a.close());
    // Said to be had, the mount's new file was committed onto the damaged copy and lost (a review of the same in local mode).
    const inoB = a.welcome!.inoBase + 1;
    const r = await a.upload(fileBatch(1, ROOT, 'big-b', inoB, data));
    assert.equal(r.chunksSent, 1, 'the damaged chunk (the first 64 KiB block) is sent');
    assert.ok((await readFile(hub, inoB)).equals(data));
    assert.ok((await readFile(hub, inoA)).equals(data), 'the first file reads its data again');
  });
});
