import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { Store } from '@aether/core/store/store';
import { BridgeClient, type UploadResult } from '../../src/bridge/client.js';
import { HUB_EXTENSION } from '../../src/hub/schema.js';
import { content, mkfile, quickBackoff, ROOT, spawnHub, tempDir, TOKEN, type HubProcess } from './helpers.js';

const hubArgs = (listen: string, data: string) => ['--listen', listen, '--data', data, '--token', TOKEN, '--metrics-listen', '127.0.0.1:0'];

function welcomed(c: BridgeClient): Promise<void> {
  return new Promise((resolve) => c.once('welcome', () => resolve()));
}

describe('durability: kill -9 of the hub process', () => {
  it('every acknowledged batch is there after a restart; batches in flight are committed exactly once', async () => {
    const data = tempDir();
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

    // The data directory, read directly: every file once, with its content; one feed entry per batch.
    const store = Store.open(data, undefined, { extensions: [HUB_EXTENSION] });
    try {
      const db = store.openReader();
      const names = db.prepare('SELECT name, ino FROM dentries WHERE parent = ?').all(ROOT) as { name: string; ino: number }[];
      assert.deepEqual(names.map((n) => n.name).sort(), [...files.keys()].sort(), 'no file lost, none duplicated');
      for (const { name, ino: i } of names) assert.ok(store.read(i, 0, 1 << 20).equals(files.get(name)!), `content of ${name}`);
      const feed = db.prepare('SELECT journal_seq FROM hub_feed ORDER BY hub_seq').all() as { journal_seq: number }[];
      assert.deepEqual(
        feed.map((r) => r.journal_seq),
        Array.from({ length: files.size }, (_, i) => 2 * (i + 1)),
      );
      db.close();
    } finally {
      store.close();
    }
  });
});
