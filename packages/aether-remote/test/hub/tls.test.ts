import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { BridgeClient } from '../../src/bridge/client.js';
import { connectClient, content, mkfile, newStore, quickBackoff, readFeedUntil, ROOT, scrape, selfSigned, spawnHub, STORES, TOKEN } from './helpers.js';

for (const { kind, skip } of STORES) describe(`TLS: aether hub --tls-cert --tls-key serves wss:// [${kind}]`, { skip }, () => {
  it('a client that trusts the certificate syncs over wss://; one that does not never gets in', async () => {
    const { cert, key } = selfSigned();
    const store = await newStore(kind);
    after(() => store.drop());
    const hub = await spawnHub(['--listen', '127.0.0.1:0', ...store.args, '--token', TOKEN, '--metrics-listen', '127.0.0.1:0', '--tls-cert', cert, '--tls-key', key]);
    const ca = readFileSync(cert);
    const clients: BridgeClient[] = [];
    try {
      assert.match(hub.url, /^wss:\/\/127\.0\.0\.1:\d+$/);
      const a = await connectClient(hub.url, { ca });
      const b = await connectClient(hub.url, { ca, followFrom: 0 });
      clients.push(a, b);
      const ino = a.welcome!.inoBase + 1;
      const body = content(2, ino, Buffer.from('over TLS'));
      const r = await a.upload({ upToSeq: 2, baseSeq: 0, entries: [mkfile(1, ROOT, 'secure.txt', ino), body.entry], chunks: body.chunks });
      const events = await readFeedUntil(b.feed(), (e) => e.kind === 'entry' && e.entry.hubSeq === r.hubSeq);
      const entry = events.at(-1);
      assert.ok(entry?.kind === 'entry' && entry.entry.ops.some((o) => o.op.t === 'mknode' && o.op.name === 'secure.txt'));
      const hashes = body.entry.op.t === 'content' ? body.entry.op.blocks.map((x) => x[1]) : [];
      assert.equal((await b.fetchChunks(hashes)).get(hashes[0]!)?.toString(), 'over TLS');

      // No trust in the self-signed certificate: every attempt fails its TLS handshake.
      const stranger = new BridgeClient({ url: hub.url, token: TOKEN, mountId: randomUUID(), backoff: quickBackoff({ start_ms: 20, max_ms: 40 }) });
      clients.push(stranger);
      let attempts = 0;
      let welcomed = false;
      stranger.on('attempt', () => attempts++);
      stranger.on('welcome', () => (welcomed = true));
      stranger.start();
      // Three attempts, however slow a loaded machine makes the handshakes.
      for (const deadline = Date.now() + 5000; attempts < 3 && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 20));
      assert.ok(attempts >= 3, `${attempts} attempts`);
      assert.equal(welcomed, false);
      // Nor does plain ws:// reach the TLS port.
      const plain = new BridgeClient({ url: hub.url.replace('wss://', 'ws://'), token: TOKEN, mountId: randomUUID(), backoff: quickBackoff({ start_ms: 20, max_ms: 40 }) });
      clients.push(plain);
      plain.on('welcome', () => (welcomed = true));
      plain.start();
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(welcomed, false);
      assert.equal(await scrape(hub.metricsUrl, 'aether_hub_connected_mounts'), 2);
    } finally {
      await Promise.all(clients.map((c) => c.close()));
      await hub.stop();
    }
  });
});
