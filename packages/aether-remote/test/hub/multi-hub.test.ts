import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import type { BridgeClient, FeedEvent } from '../../src/bridge/client.js';
import { Hub } from '../../src/hub/hub.js';
import { IDLE_IN_TRANSACTION_MS, LISTEN_APPLICATION, POOL_APPLICATION } from '../../src/hub/pg-storage.js';
import { encodeChunkFrame, type AckFrame } from '../../src/protocol/frames.js';
import { bin, connectClient, content, fileBatch, listDir, metricValue, mkfile, newStore, RawClient, readFeedUntil, readFile, ROOT, startHub, STORES, TOKEN, treeOf, type TestStore } from './helpers.js';
import { withAdmin } from '../pg-test-db.js';
import { Replica } from './replica.js';

const pgSkip = STORES.find((s) => s.kind === 'postgres')!.skip;

/** Two in-process hubs on one new PostgreSQL database. */
async function twoHubs(opts: { feedRetainEntries?: number } = {}): Promise<{ store: TestStore; h1: Hub; h2: Hub; logs: string[][]; close(): Promise<void> }> {
  const store = await newStore('postgres');
  const { hub: h1, logs: l1 } = await startHub(opts, 'postgres', store);
  const { hub: h2, logs: l2 } = await startHub(opts, 'postgres', store);
  return {
    store,
    h1,
    h2,
    logs: [l1, l2],
    close: async () => {
      await Promise.all([h1.close(), h2.close()]);
      await store.drop();
    },
  };
}

/** Follows `c`'s changefeed into a replica until it holds hub sequence `seq`. */
async function follow(feed: AsyncIterator<FeedEvent>, replica: Replica, seq: number): Promise<number[]> {
  const seen: number[] = [];
  while (replica.cursor < seq) {
    for (const e of await readFeedUntil(feed, () => true, 10_000)) {
      replica.apply(e);
      if (e.kind === 'entry') seen.push(e.entry.hubSeq);
    }
  }
  return seen;
}

describe('several hubs on one PostgreSQL database', { skip: pgSkip }, () => {
  it('concurrent commits through two hubs get hub sequences 1..N with no gap, in commit order, and every commit reaches both feeds', async () => {
    // A short feed retention makes the hubs' images catch up both ways: by re-reading the rows
    // the other hub changed, and by reloading everything once the feed no longer says.
    const { h1, h2, close } = await twoHubs({ feedRetainEntries: 4 });
    const clients: BridgeClient[] = [];
    try {
      for (const hub of [h1, h2, h1, h2]) clients.push(await connectClient(hub.url));
      assert.equal(h1.hubId, h2.hubId, 'one changefeed, one name');
      const f1 = await connectClient(h1.url, { followFrom: 0 });
      const f2 = await connectClient(h2.url, { followFrom: 0 });
      clients.push(f1, f2);
      const [r1, r2] = [new Replica(), new Replica()];
      const [feed1, feed2] = [f1.feed(), f2.feed()];
      const PER_CLIENT = 12;
      const acks = await Promise.all(
        clients.slice(0, 4).map(async (c, ci) => {
          const seqs: number[] = [];
          // Each mount works in a directory of its own and also renames into the shared root.
          const dirIno = c.welcome!.inoBase + 1;
          const first = await c.upload({ upToSeq: 1, baseSeq: 0, entries: [{ seq: 1, op: { t: 'mknode', parent: ROOT, name: `d${ci}`, ino: dirIno, kind: 'dir', mode: 0o755, uid: 0, gid: 0, timeMs: 1 } }], chunks: new Map() });
          seqs.push(first.hubSeq!);
          for (let i = 0; i < PER_CLIENT; i++) {
            const ino = dirIno + 1 + i;
            const b = fileBatch(2 + 3 * i, dirIno, `f${i}`, ino, Buffer.from(`client ${ci} file ${i}`));
            b.entries.push({ seq: 4 + 3 * i, op: { t: 'rename', parent: dirIno, name: `f${i}`, ino, newParent: ROOT, newName: `c${ci}-f${i}`, dstIno: 0, flags: 0, timeMs: 2 } });
            b.upToSeq = 4 + 3 * i;
            seqs.push((await c.upload(b)).hubSeq!);
          }
          return seqs;
        }),
      );
      const all = acks.flat().sort((a, b) => a - b);
      const n = 4 * (PER_CLIENT + 1);
      assert.deepEqual(all, Array.from({ length: n }, (_, i) => i + 1), 'hub sequences 1..N, each once');
      for (const seqs of acks) assert.deepEqual([...seqs].sort((a, b) => a - b), seqs, "one mount's commits in its order");
      // Both followers see every entry in order (Replica.apply asserts the gap-free order), and
      // end with the same tree as the database.
      await follow(feed1, r1, n);
      await follow(feed2, r2, n);
      await r1.assertEquals(h1);
      await r2.assertEquals(h2);
      const names = await listDir(h2, ROOT);
      assert.equal(names.size, 4 + 4 * PER_CLIENT);
      assert.equal((await readFile(h1, names.get('c3-f11')!)).toString(), 'client 3 file 11');
      assert.equal(h1.hubSeq, n);
      assert.equal(h2.hubSeq, n, 'each hub heard of the other\'s commits');
    } finally {
      await Promise.all(clients.map((c) => c.close()));
      await close();
    }
  });

  it('a batch re-sent to hub 2 after hub 1 acknowledged it is acknowledged as a duplicate, not applied twice', async () => {
    const { h1, h2, close } = await twoHubs();
    try {
      const id = randomUUID();
      const one = await RawClient.hello(h1.url, id);
      const ino = one.welcome.inoBase + 1;
      const body = content(2, ino, Buffer.from('exactly once, across hubs'));
      const batch = { t: 'batch', id: 1, baseSeq: 0, upToSeq: 2, entries: [mkfile(1, ROOT, 'once.txt', ino), body.entry] };
      for (const [h, d] of body.chunks) one.c.sendBinary(encodeChunkFrame(h, d));
      one.c.send(batch);
      const first = (await one.c.next((f) => f.t === 'ack')) as AckFrame;
      assert.deepEqual([first.duplicate, first.hubSeq], [false, 1]);
      one.c.close();
      // The mount fails over: hub 2 knows the mount, its number and what it committed.
      const two = await RawClient.hello(h2.url, id);
      assert.deepEqual([two.welcome.mountNo, two.welcome.appliedSeq, two.welcome.hubId], [one.welcome.mountNo, 2, one.welcome.hubId]);
      two.c.send({ t: 'have', id: 5, hashes: [...body.chunks.keys()] });
      assert.deepEqual((await two.c.next((f) => f.t === 'missing')) as unknown, { t: 'missing', id: 5, hashes: [] }, 'hub 2 has the chunks hub 1 stored');
      two.c.send(batch);
      const again = (await two.c.next((f) => f.t === 'ack')) as AckFrame;
      assert.deepEqual(again, { t: 'ack', id: 1, journalSeq: 2, hubSeq: null, duplicate: true, resolutions: [] });
      assert.equal(await metricValue(h2.registry, 'aether_hub_duplicate_batches_total'), 1);
      assert.equal((await h2.storage.refreshSeq()), 1, 'no second changefeed entry');
      assert.deepEqual([...(await listDir(h2, ROOT)).keys()], ['once.txt']);
      two.c.close();
    } finally {
      await close();
    }
  });

  it('the same batch sent to both hubs at once (a failover while the first commit ran) is committed once, and the other gets it as a duplicate', async () => {
    // The commit read the mount's applied sequence from its snapshot taken before it waited for
    // the commit lock: in 11 of 15 rounds a review saw the batch committed twice.
    const { h1, h2, close } = await twoHubs();
    try {
      const id = randomUUID();
      const one = await RawClient.hello(h1.url, id);
      const two = await RawClient.hello(h2.url, id);
      for (let round = 0; round < 10; round++) {
        const ino = one.welcome.inoBase + 1 + round;
        const body = content(2 * round + 2, ino, Buffer.from(`round ${round}`));
        const batch = { t: 'batch', id: round + 1, baseSeq: 0, upToSeq: 2 * round + 2, entries: [mkfile(2 * round + 1, ROOT, `r${round}.txt`, ino), body.entry] };
        for (const c of [one.c, two.c]) for (const [h, d] of body.chunks) c.sendBinary(encodeChunkFrame(h, d));
        one.c.send(batch);
        two.c.send(batch);
        const acks = (await Promise.all([one.c.next((f) => f.t === 'ack'), two.c.next((f) => f.t === 'ack')])) as AckFrame[];
        assert.deepEqual(acks.map((a) => a.duplicate).sort(), [false, true], `round ${round}: ${JSON.stringify(acks)}`);
        assert.deepEqual(acks.flatMap((a) => a.resolutions), [], `round ${round}: ${JSON.stringify(acks)}`);
      }
      assert.equal(await h2.storage.refreshSeq(), 10, 'one changefeed entry a round');
      one.c.close();
      two.c.close();
    } finally {
      await close();
    }
  });

  it('conflicts between mounts on different hubs follow the same rules: the first commit wins the name', async () => {
    const { h1, h2, close } = await twoHubs();
    const a = await connectClient(h1.url);
    const b = await connectClient(h2.url);
    try {
      const fa = a.welcome!.inoBase + 1;
      const fb = b.welcome!.inoBase + 1;
      await a.upload(fileBatch(1, ROOT, 'a.txt', fa, Buffer.from('from A')));
      const rb = await b.upload(fileBatch(1, ROOT, 'a.txt', fb, Buffer.from('from B')));
      const renamed = rb.resolutions.find((r) => r.kind === 'renamed');
      assert.ok(renamed && renamed.kind === 'renamed' && renamed.name.startsWith(`a.conflict-${b.mountId}-`), JSON.stringify(rb.resolutions));
      // A content change on top of an old version, through the other hub: a conflict copy.
      const edit = content(3, fa, Buffer.from('A, second version'));
      await a.upload({ upToSeq: 3, baseSeq: 1, entries: [edit.entry], chunks: edit.chunks });
      const late = content(3, fa, Buffer.from('B edits what it saw at 1'));
      const rl = await b.upload({ upToSeq: 3, baseSeq: 1, entries: [late.entry], chunks: late.chunks });
      assert.deepEqual(rl.resolutions.map((r) => r.kind), ['conflict-copy']);
      const tree = await treeOf(h1);
      assert.equal(tree.dentries.length, 3);
      assert.equal((await readFile(h2, fa)).toString(), 'A, second version');
    } finally {
      await Promise.all([a.close(), b.close()]);
      await close();
    }
  });

  it('a hub that missed more commits than the feed retains reloads its image before it commits', async () => {
    const { h1, h2, close } = await twoHubs({ feedRetainEntries: 2 });
    const a = await connectClient(h1.url);
    const b = await connectClient(h2.url);
    try {
      await b.upload(fileBatch(1, ROOT, 'first', b.welcome!.inoBase + 1, Buffer.from('b')));
      const base = a.welcome!.inoBase;
      for (let i = 1; i <= 5; i++) await a.upload(fileBatch(2 * i - 1, ROOT, `a${i}`, base + i, Buffer.from(`a${i}`)));
      const dir = base + 10;
      await a.upload({ upToSeq: 11, baseSeq: 0, entries: [{ seq: 11, op: { t: 'mknode', parent: ROOT, name: 'dir', ino: dir, kind: 'dir', mode: 0o755, uid: 0, gid: 0, timeMs: 1 } }], chunks: new Map() });
      // Hub 2's image is at 1, the feed keeps only 6..7: it cannot tell what changed, so it reloads.
      const r = await b.upload(fileBatch(3, dir, 'inside', b.welcome!.inoBase + 2, Buffer.from('in the dir hub 1 made')));
      assert.deepEqual(r.resolutions, []);
      assert.equal(r.hubSeq, 8);
      assert.deepEqual([...(await listDir(h1, dir)).keys()], ['inside']);
    } finally {
      await Promise.all([a.close(), b.close()]);
      await close();
    }
  });

  it('hubs whose database connections break (LISTEN and pooled) reconnect; commits and followers go on', async () => {
    const { store, h1, h2, logs, close } = await twoHubs();
    const a = await connectClient(h1.url);
    const f = await connectClient(h2.url, { followFrom: 0 });
    const feed = f.feed();
    try {
      await readFeedUntil(feed, (e) => e.kind === 'snapshot-end');
      const dbName = new URL((store.opts as { storeUrl: string }).storeUrl).pathname.slice(1);
      const killed = await withAdmin((c) => c.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name IN ($2, $3)', [dbName, LISTEN_APPLICATION, POOL_APPLICATION]));
      assert.ok(killed.rowCount! >= 2, 'both hubs\' LISTEN connections at least');
      const base = a.welcome!.inoBase;
      for (let i = 1; i <= 3; i++) await a.upload(fileBatch(2 * i - 1, ROOT, `f${i}`, base + i, Buffer.from(`f${i}`)));
      const got = await readFeedUntil(feed, (e) => e.kind === 'entry' && e.entry.hubSeq === 3, 10_000);
      assert.deepEqual(got.flatMap((e) => (e.kind === 'entry' ? [e.entry.hubSeq] : [])), [1, 2, 3]);
      // Both the loss and the recovery are in each hub's log.
      for (const log of logs) {
        for (let i = 0; i < 100 && !log.includes('aether hub: PostgreSQL LISTEN connection back; catching up with commits made meanwhile'); i++) await new Promise((r) => setTimeout(r, 50));
        assert.ok(log.some((l) => /^aether hub: PostgreSQL LISTEN connection lost \(.*\); reconnecting$/.test(l)), log.join('\n'));
        assert.ok(log.some((l) => l === 'aether hub: PostgreSQL LISTEN connection back; catching up with commits made meanwhile'), log.join('\n'));
      }
    } finally {
      await Promise.all([a.close(), f.close()]);
      await close();
    }
  });

  it('a hub whose pooled connections are terminated again and again during commits keeps running (an error on a connection in use killed the process); every batch is committed once', async () => {
    const store = await newStore('postgres');
    const { hub, logs } = await startHub({}, 'postgres', store);
    const a = await connectClient(hub.url);
    const dbName = new URL((store.opts as { storeUrl: string }).storeUrl).pathname.slice(1);
    let killing = true;
    let kills = 0;
    const killer = (async () => {
      while (killing) {
        const r = await withAdmin((c) => c.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name = $2', [dbName, POOL_APPLICATION]));
        kills += r.rowCount ?? 0;
        await new Promise((res) => setTimeout(res, 20));
      }
    })();
    try {
      const base = a.welcome!.inoBase;
      // At least 40 commits, and as many more as it takes for 20 terminations (a fast run made only 40).
      let n = 0;
      while (n < 40 || (kills < 20 && n < 400)) {
        n++;
        await a.upload(fileBatch(2 * n - 1, ROOT, `f${n}`, base + n, Buffer.from(`f${n}`)));
      }
      killing = false;
      await killer;
      assert.ok(kills >= 20, `${kills} connections terminated`);
      const names = await listDir(hub, ROOT);
      assert.equal(names.size, n, [...names.keys()].join(' '));
      for (let i = 1; i <= n; i++) assert.equal((await readFile(hub, base + i)).toString(), `f${i}`);
      assert.ok(logs.some((l) => /PostgreSQL connection lost in use: /.test(l)) || logs.some((l) => /rejected INTERNAL/.test(l)), logs.join('\n'));
    } finally {
      killing = false;
      await killer;
      await a.close();
      await hub.close();
      await store.drop();
    }
  });

  it('a hub stopped inside a commit (its session idle in a transaction, holding the commit lock) holds up the other hubs\' commits only until the server ends that session', async () => {
    const { h1, h2, close } = await twoHubs();
    const a = await connectClient(h2.url);
    // As a hub stopped between a commit's statements: a session of h1's pool, in a transaction, holding hub_state's row lock.
    const pool = (h1 as unknown as { storage: { pool: import('pg').Pool } }).storage.pool;
    const held = await pool.connect();
    held.on('error', () => undefined);
    try {
      await held.query('BEGIN; SELECT 1 FROM hub_state WHERE id = 1 FOR UPDATE');
      const start = Date.now();
      await a.upload(fileBatch(1, ROOT, 'after', a.welcome!.inoBase + 1, Buffer.from('x')));
      const waited = Date.now() - start;
      assert.ok(waited >= IDLE_IN_TRANSACTION_MS - 1000 && waited < IDLE_IN_TRANSACTION_MS + 10_000, `committed after ${waited} ms`);
      assert.equal((await listDir(h2, ROOT)).get('after'), a.welcome!.inoBase + 1);
    } finally {
      held.release(true);
      await a.close();
      await close();
    }
  });

  it('a role that may read the database but not write it is refused at the start in one line (it passed, and every request failed)', async () => {
    const store = await newStore('postgres');
    const role = `aether_ro_${randomUUID().slice(0, 8)}`;
    const url = new URL((store.opts as { storeUrl: string }).storeUrl);
    const dbName = url.pathname.slice(1);
    try {
      const { hub } = await startHub({}, 'postgres', store);
      await hub.close();
      await withAdmin((c) => c.query(`CREATE ROLE ${role} LOGIN`));
      await withAdmin(async (c) => {
        await c.query(`GRANT CONNECT ON DATABASE ${dbName} TO ${role}`);
      });
      await withAdmin(async (c) => {
        // CREATE on the schema too (PostgreSQL 14 and older grant it to everyone): the migration's checks pass.
        await c.query(`GRANT USAGE, CREATE ON SCHEMA public TO ${role}`);
        await c.query(`GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${role}`);
      }, dbName);
      url.username = role;
      const r = spawnSync(process.execPath, [bin, 'hub', '--token', 'x', '--listen', '127.0.0.1:0', '--metrics-listen', 'off', '--store', url.href], { encoding: 'utf8', timeout: 30_000 });
      assert.equal(r.status, 1, r.stderr + r.stdout);
      assert.match(r.stderr, /^aether: cannot use the hub store postgres:\/\/\S+: the hub may not write to it \(permission denied for table hub_state\)\n$/);
    } finally {
      await store.drop();
      await withAdmin((c) => c.query(`DROP ROLE IF EXISTS ${role}`));
    }
  });

  it('hubs starting at the same time on a new database migrate it once and share one hub id', async () => {
    const store = await newStore('postgres');
    const hubs = await Promise.all([1, 2, 3].map(() => Hub.start({ ...store.opts, token: TOKEN, listen: '127.0.0.1:0', metricsListen: 'off', log: () => undefined })));
    try {
      assert.equal(new Set(hubs.map((h) => h.hubId)).size, 1);
      assert.deepEqual([...(await treeOf(hubs[0]!)).inodes.keys()], [ROOT]);
    } finally {
      await Promise.all(hubs.map((h) => h.close()));
      await store.drop();
    }
  });
});
