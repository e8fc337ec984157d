import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { blocksOfContent } from '../../src/protocol/blocks.js';
import type { BridgeClient } from '../../src/bridge/client.js';
import pg from 'pg';
import type { ChunkReclaim } from '../../src/hub/storage.js';
import type { Hub } from '../../src/hub/hub.js';
import { connectClient, content, fileBatch, metricValue, newStore, readFeedUntil, readFile, ROOT, startHub, STORES, type StoreKind } from './helpers.js';

const hashesOf = (data: Buffer): string[] => [...blocksOfContent(data).chunks.keys()];

/** Rewrites file `ino` with `data` as journal entry `seq`. */
function rewrite(client: BridgeClient, seq: number, ino: number, data: Buffer): ReturnType<BridgeClient['upload']> {
  const body = content(seq, ino, data);
  return client.upload({ upToSeq: seq, baseSeq: 0, entries: [body.entry], chunks: body.chunks });
}

/** A hub (grace 60 s, 2 entries kept) whose clock the test moves, and a client of it with a first inode number. */
async function clockedHub(kind: StoreKind): Promise<{ hub: Hub; a: BridgeClient; ino: number; clock: { now: number } }> {
  const clock = { now: 1_000_000 };
  const { hub } = await startHub({ chunkGraceMs: 60_000, feedRetainEntries: 2, nowMs: () => clock.now }, kind);
  after(() => hub.close());
  const a = await connectClient(hub.url);
  after(() => a.close());
  return { hub, a, ino: a.welcome!.inoBase + 1, clock };
}

for (const { kind, skip } of STORES) describe(`hub: the space of chunks nothing names any more [${kind}]`, { skip }, () => {
  it('a chunk neither the tree nor a retained entry names is dropped once the grace period has passed, not before; one named again stays', async () => {
    const { hub, a, ino, clock } = await clockedHub(kind);
    const [v1, v2, v3] = [randomBytes(200_000), randomBytes(200_000), randomBytes(200_000)];
    await a.upload(fileBatch(1, ROOT, 'f', ino, v1));
    await rewrite(a, 3, ino, v2);
    await rewrite(a, 4, ino, v3);
    // Retained: the entries of v2 and v3 (2 of 3); the tree names v3: only v1's chunks are unnamed.
    const before = await hub.storage.countChunks();
    const first = await hub.storage.reclaimChunks(clock.now, 60_000);
    assert.deepEqual(first, { dropped: 0, freedBytes: 0, dying: hashesOf(v1).length }, 'noted, kept for the grace period');
    assert.ok(await hub.storage.readChunk(hashesOf(v1)[0]!));

    clock.now += 59_000;
    assert.equal((await hub.storage.reclaimChunks(clock.now, 60_000)).dropped, 0, 'not yet');
    clock.now += 1_000;
    const second = await hub.storage.reclaimChunks(clock.now, 60_000);
    assert.equal(second.dropped, hashesOf(v1).length);
    assert.equal(second.dying, 0);
    assert.equal(await hub.storage.countChunks(), before - hashesOf(v1).length);
    for (const h of hashesOf(v1)) assert.equal(await hub.storage.readChunk(h), undefined);
    for (const h of [...hashesOf(v2), ...hashesOf(v3)]) assert.ok(await hub.storage.readChunk(h), 'a retained entry or the tree names it');
    assert.deepEqual(await readFile(hub, ino), v3);

    // v2 falls out of the retained feed; before its grace ends another file names it again.
    await rewrite(a, 5, ino, randomBytes(1000));
    await rewrite(a, 6, ino, randomBytes(1000));
    assert.equal((await hub.storage.reclaimChunks(clock.now, 60_000)).dying, hashesOf(v2).length + hashesOf(v3).length);
    await a.upload(fileBatch(7, ROOT, 'g', ino + 1, v2));
    clock.now += 60_000;
    const third = await hub.storage.reclaimChunks(clock.now, 60_000);
    assert.equal(third.dropped, hashesOf(v3).length, 'v3 only: v2 is named again');
    assert.deepEqual(await readFile(hub, ino + 1), v2);

    // Once g's entry is pruned too, the tree alone names v2: it stays.
    await rewrite(a, 9, ino, randomBytes(1000));
    await rewrite(a, 10, ino, randomBytes(1000));
    await hub.storage.reclaimChunks(clock.now, 60_000);
    clock.now += 60_000;
    await hub.storage.reclaimChunks(clock.now, 60_000);
    for (const h of hashesOf(v2)) assert.ok(await hub.storage.readChunk(h), 'the tree names it');
    assert.deepEqual(await readFile(hub, ino + 1), v2);
  });

  it('a chunk named again and unnamed again between two runs gets a whole grace period from then (a snapshot taken meanwhile may name it)', async () => {
    const { hub, a, ino, clock } = await clockedHub(kind);
    const v1 = randomBytes(100_000);
    await a.upload(fileBatch(1, ROOT, 'f', ino, v1));
    await rewrite(a, 3, ino, randomBytes(10));
    await rewrite(a, 4, ino, randomBytes(10));
    assert.equal((await hub.storage.reclaimChunks(clock.now, 60_000)).dying, hashesOf(v1).length);
    // 50 s later another file names v1, and before the next run it is unnamed again.
    clock.now += 50_000;
    await a.upload(fileBatch(5, ROOT, 'g', ino + 1, v1));
    await rewrite(a, 7, ino + 1, randomBytes(10));
    await rewrite(a, 8, ino + 1, randomBytes(10));
    clock.now += 11_000;
    assert.equal((await hub.storage.reclaimChunks(clock.now, 60_000)).dropped, 0, 'named 11 s ago: not dropped');
    assert.ok(await hub.storage.readChunk(hashesOf(v1)[0]!));
    clock.now += 60_000;
    assert.equal((await hub.storage.reclaimChunks(clock.now, 60_000)).dropped, hashesOf(v1).length + 1, "then dropped, with f's first small version (g's is in a retained entry)");
  });

  // PostgreSQL only: it ran NOT IN over a subquery bigger than work_mem as a rescan per row.
  if (kind === 'postgres') it('a store of 150 000 named chunks is looked over in seconds (it holds the commit lock meanwhile)', async () => {
    const store = await newStore('postgres');
    const { hub } = await startHub({ chunkGraceMs: 3_600_000 }, 'postgres', store);
    const c = new pg.Client({ connectionString: (store.opts as { storeUrl: string }).storeUrl });
    await c.connect();
    after(async () => {
      await c.end();
      await hub.close();
      await store.drop();
    });
    await c.query(`INSERT INTO chunks (hash, data) SELECT md5(i::text) || md5((i + 1)::text), '\\x00' FROM generate_series(1, 151000) i`);
    await c.query(`INSERT INTO blocks (ino, idx, hash) SELECT 1000000 + i, 0, md5(i::text) || md5((i + 1)::text) FROM generate_series(1, 150000) i`);
    await c.query('ANALYZE');
    const run = hub.storage.reclaimChunks(Date.now(), 3_600_000);
    const outcome = await Promise.race([run, new Promise<'timeout'>((res) => setTimeout(() => res('timeout'), 30_000))]);
    if (outcome === 'timeout') {
      await c.query("SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND query LIKE '%hub_dying%'");
      await run.catch(() => undefined);
    }
    assert.notEqual(outcome, 'timeout', 'still running after 30 s');
    assert.equal((outcome as ChunkReclaim).dying, 1000);
  });

  it('the hub runs it by itself (grace 0: within seconds of the commits) and counts it', async () => {
    const { hub, logs } = await startHub({ chunkGraceMs: 0, feedRetainEntries: 1 }, kind);
    after(() => hub.close());
    const a = await connectClient(hub.url);
    after(() => a.close());
    const ino = a.welcome!.inoBase + 1;
    const v1 = randomBytes(300_000);
    await a.upload(fileBatch(1, ROOT, 'f', ino, v1));
    // Twice the same content: only v1's chunks are unnamed once the feed keeps the last entry.
    const small = randomBytes(10);
    await rewrite(a, 3, ino, small);
    await rewrite(a, 4, ino, small);
    const deadline = Date.now() + 10_000;
    while ((await metricValue(hub.registry, 'aether_hub_chunks_reclaimed_total')) < hashesOf(v1).length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.equal(await metricValue(hub.registry, 'aether_hub_chunks_reclaimed_total'), hashesOf(v1).length, logs.join('\n'));
    // PostgreSQL counts the rows' bytes; the embedded store the pack bytes it gave back (none: the pack is mostly live).
    if (kind === 'postgres') assert.equal(await metricValue(hub.registry, 'aether_hub_chunk_bytes_reclaimed_total'), v1.length);
    assert.ok(logs.some((l) => l.includes('reclaimed 5 chunk(s)')), logs.join('\n'));
  });

  it('a client that finds an entry\'s chunks gone (it fell behind past the grace period) follows again from a snapshot of what the hub has', async () => {
    const { hub } = await startHub({ chunkGraceMs: 0, feedRetainEntries: 1 }, kind);
    after(() => hub.close());
    const a = await connectClient(hub.url);
    after(() => a.close());
    const ino = a.welcome!.inoBase + 1;
    const v1 = randomBytes(200_000);
    const b = await connectClient(hub.url, { followFrom: hub.hubSeq });
    after(() => b.close());
    const feed = b.feed()[Symbol.asyncIterator]();
    await a.upload(fileBatch(1, ROOT, 'f', ino, v1));
    const [entry] = (await readFeedUntil(feed, (e) => e.kind === 'entry')).filter((e) => e.kind === 'entry');
    assert.ok(entry?.kind === 'entry');
    // Before B fetches v1, A replaces it and the hub drops it.
    const v2 = randomBytes(1000);
    await rewrite(a, 3, ino, v2);
    await rewrite(a, 4, ino, v2);
    await hub.storage.reclaimChunks(Date.now(), 0);
    assert.equal((await b.fetchChunks(hashesOf(v1))).size, 0, 'the chunks are gone');
    b.resync();
    const events = await readFeedUntil(feed, (e) => e.kind === 'snapshot-end', 10_000);
    assert.equal(events[0]?.kind, 'reset', 'what was queued went; the view starts over');
    const end = events.at(-1);
    assert.ok(end?.kind === 'snapshot-end' && end.hubSeq === hub.hubSeq);
    const parts = events.flatMap((e) => (e.kind === 'snapshot-part' ? e.part.blocks.map((x) => x[2]) : []));
    assert.deepEqual(parts, hashesOf(v2), 'the snapshot names what the hub has');
    const fetched = await b.fetchChunks(parts);
    assert.equal(fetched.size, parts.length);
  });
});
