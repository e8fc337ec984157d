import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { BridgeClient, type UploadResult } from '../../src/bridge/client.js';
import { content, listDir, mkfile, newStore, openTestStore, quickBackoff, readFile, ROOT, spawnHub, STORES, TOKEN, type HubProcess, type TestStore } from './helpers.js';

const hubArgs = (listen: string, store: TestStore) => ['--listen', listen, ...store.args, '--token', TOKEN, '--metrics-listen', '127.0.0.1:0'];

function welcomed(c: BridgeClient): Promise<void> {
  return new Promise((resolve) => c.once('welcome', () => resolve()));
}

for (const { kind, skip } of STORES) describe(`durability: kill -9 of the hub process [${kind}]`, { skip }, () => {
  it('every acknowledged batch is there after a restart; batches in flight are committed exactly once', async () => {
    const data = await newStore(kind);
    let hub: HubProcess = await spawnHub(hubArgs('127.0.0.1:0', data));
    const listen = hub.url.replace('ws://', '');
    const client = new BridgeClient({ url: hub.url, token: TOKEN, mountId: randomUUID(), backoff: quickBackoff({ start_ms: 50, max_ms: 200 }) });
    const files = new Map<string, Buffer>();
    let seq = 0;
    let ino = 0;
    const upload = (name: string): Promise<UploadResult> => {
      const body = randomBytes(10_000 + Math.floor(Math.random() * 120_000));
      files.set(name, body);
      const i = client.welcome!.inoBase + ++ino;
      const c = content(seq + 2, i, body);
      seq += 2;
      return client.upload({ upToSeq: seq, baseSeq: 0, entries: [mkfile(seq - 1, ROOT, name, i), c.entry], chunks: c.chunks });
    };
    try {
      const first = welcomed(client);
      client.start();
      await first;
      // Acknowledged, then killed at once: the ack must mean durable.
      for (let i = 0; i < 10; i++) await upload(`acked-${i}`);
      const ackedSeq = client.appliedSeq;
      await hub.kill9();

      const back = welcomed(client);
      hub = await spawnHub(hubArgs(listen, data));
      await back;
      assert.equal(client.welcome!.appliedSeq, ackedSeq, 'the restarted hub knows every acknowledged batch');

      // Batches in flight when the hub dies are sent again after the restart.
      const inFlight = Array.from({ length: 8 }, (_, i) => upload(`in-flight-${i}`));
      await inFlight[0];
      await hub.kill9();
      hub = await spawnHub(hubArgs(listen, data));
      await Promise.all(inFlight);
      assert.equal(client.appliedSeq, seq);
    } finally {
      await client.close();
      await hub.stop();
    }

    // The store, read directly: every file once, with its content; one feed entry per batch.
    const store = await openTestStore(data);
    try {
      const names = await listDir(store, ROOT);
      assert.deepEqual([...names.keys()].sort(), [...files.keys()].sort(), 'no file lost, none duplicated');
      for (const [name, i] of names) assert.ok((await readFile(store, i)).equals(files.get(name)!), `content of ${name}`);
      const feed = (await store.storage.feedPage(0, 1000)).rows.map((r) => (JSON.parse(r.entry) as { journalSeq: number }).journalSeq);
      assert.deepEqual(
        feed,
        Array.from({ length: files.size }, (_, i) => 2 * (i + 1)),
      );
    } finally {
      await store.storage.close();
      await data.drop();
    }
  });
});
