import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { BridgeClient, type UploadResult } from '../../src/bridge/client.js';
import { ReconnectBackoff } from '../../src/bridge/backoff.js';
import { CuttingProxy } from '../cutting-proxy.js';
import { seededRandom } from '../seeded-random.js';
import { content, listDir, metricValue, mkfile, readFile, ROOT, startHub, STORES, TOKEN } from './helpers.js';
import { Replica } from './replica.js';

for (const { kind, skip } of STORES) describe(`a proxy that cuts connections at random moments during uploads [${kind}]`, { skip }, () => {
  it('after it stops, the hub holds every batch exactly once and a follower has the same tree', async () => {
    const { hub, logs } = await startHub({}, kind);
    const proxy = new CuttingProxy(Number(hub.address.split(':')[1]), seededRandom(99));
    const url = `ws://127.0.0.1:${await proxy.listen()}`;
    const backoff = () => new ReconnectBackoff({ start_ms: 5, max_ms: 40, multiplier: 2, jitter_percent: 20 }, seededRandom(7));
    const mount = new BridgeClient({ url, token: TOKEN, mountId: randomUUID(), backoff: backoff() });
    const follower = new BridgeClient({ url, token: TOKEN, mountId: randomUUID(), backoff: backoff(), followFrom: 0, feedBufferMax: 64 });
    const replica = new Replica();
    const following = (async () => {
      for await (const e of follower.feed()) replica.apply(e);
    })();
    const rnd = seededRandom(5);
    const files = new Map<string, Buffer>();
    try {
      const welcomed = new Promise((r) => mount.once('welcome', r));
      mount.start();
      follower.start();
      await welcomed;
      const inoBase = mount.welcome!.inoBase;
      const uploads: Promise<UploadResult>[] = [];
      const N = 150;
      for (let i = 0; i < N; i++) {
        // Some contents repeat, so dedup and re-uploads after cuts mix.
        const size = 1 + Math.floor(rnd() * 150_000);
        const body = i % 5 === 4 ? files.get(`file-${i - 1}`)! : Buffer.alloc(size, i % 251);
        files.set(`file-${i}`, body);
        const c = content(2 * i + 2, inoBase + i + 1, body);
        uploads.push(mount.upload({ upToSeq: 2 * i + 2, baseSeq: 0, entries: [mkfile(2 * i + 1, ROOT, `file-${i}`, inoBase + i + 1), c.entry], chunks: c.chunks }));
      }
      // Stuck uploads fail with what the two sides were doing rather than holding the run.
      let acked = 0;
      for (const u of uploads) void u.then(() => acked++, () => undefined);
      let stuck: NodeJS.Timeout | undefined;
      const results = await Promise.race([
        Promise.all(uploads),
        new Promise<never>((_, reject) => {
          stuck = setTimeout(() => reject(new Error(`uploads stuck: ${acked}/${N} acknowledged, client ${mount.state} applied ${mount.appliedSeq}, ${proxy.cuts} cuts; hub log: ${logs.slice(-8).join(' | ')}`)), 120_000);
        }),
      ]).finally(() => clearTimeout(stuck));
      proxy.cutting = false;
      assert.ok(proxy.cuts >= 10, `the proxy cut only ${proxy.cuts} connections`);

      // Every file once, with its content, and nothing else.
      const names = await listDir(hub, ROOT);
      assert.deepEqual([...names.keys()].sort(), [...files.keys()].sort());
      for (const [name, ino] of names) assert.ok((await readFile(hub, ino)).equals(files.get(name)!), name);
      // One changefeed entry per batch, in journal order, and no conflict from a double apply.
      const feed = (await hub.storage.feedPage(0, 10 * N)).rows.map((r) => ({ ...r, journal_seq: (JSON.parse(r.entry) as { journalSeq: number }).journalSeq }));
      assert.deepEqual(
        feed.map((r) => r.journal_seq),
        Array.from({ length: N }, (_, i) => 2 * i + 2),
      );
      assert.ok(feed.every((r) => (JSON.parse(r.entry) as { resolutions: unknown[] }).resolutions.length === 0));
      assert.ok(results.every((r) => r.resolutions.length === 0));
      const duplicates = await metricValue(hub.registry, 'aether_hub_duplicate_batches_total');
      results.forEach((r, i) => assert.ok(r.journalSeq >= 2 * i + 2, `batch ${i} acknowledged up to ${r.journalSeq}`));

      // The follower, cut just as often, converges on the same tree.
      const deadline = Date.now() + 10_000;
      while (replica.cursor !== hub.hubSeq && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      await replica.assertEquals(hub);
      process.stdout.write(`# proxy: ${proxy.cuts} cuts, ${duplicates} re-sent batches acknowledged as duplicates, ${await metricValue(hub.registry, 'aether_hub_snapshots_total')} snapshots\n`);
    } finally {
      await Promise.all([mount.close(), follower.close()]);
      await following;
      await proxy.close();
      await hub.close();
    }
  });
});
