import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { ReconnectBackoff, type BackoffStep } from '../../src/bridge/backoff.js';
import { BridgeClient, type FeedEvent, type UploadResult } from '../../src/bridge/client.js';
import { parseHubUrls } from '../../src/bridge/hub-urls.js';
import { fileBatch, readFeedUntil, ROOT, spawnHubsOnOneDatabase, STORES, TOKEN } from '../hub/helpers.js';

const pgSkip = STORES.find((s) => s.kind === 'postgres')!.skip;

describe('hub URLs', () => {
  it('one or several ws:// or wss:// URLs, comma-separated; anything else is refused', () => {
    assert.deepEqual(parseHubUrls('ws://h1:1'), ['ws://h1:1']);
    assert.deepEqual(parseHubUrls('ws://h1:1, wss://h2:2 ,'), ['ws://h1:1', 'wss://h2:2']);
    for (const bad of ['', ',', 'http://h:1', 'ws://h1:1,h2:2', 'ws://']) {
      assert.throws(() => parseHubUrls(bad), (e: Error & { code?: string }) => e.code === 'MOUNT_OPTION_INVALID', bad);
    }
  });
});

describe('failover between hubs on one PostgreSQL database', { skip: pgSkip }, () => {
  it('each failed attempt moves to the next URL, paced by the backoff; the cursor stays valid; nothing is lost or applied twice', async () => {
    const { h1, h2, stop } = await spawnHubsOnOneDatabase();
    // Nothing listens on the middle URL: a hub that is down.
    const dead = 'ws://127.0.0.1:1';
    const client = new BridgeClient({
      url: [h1.url, dead, h2.url],
      token: TOKEN,
      mountId: randomUUID(),
      backoff: new ReconnectBackoff({ start_ms: 40, max_ms: 1000, multiplier: 2, jitter_percent: 0 }),
      followFrom: 0,
    });
    const attempts: string[] = [];
    const steps: BackoffStep[] = [];
    client.on('attempt', (a: { url: string }) => attempts.push(a.url));
    client.on('backoff', (s: BackoffStep) => steps.push(s));
    const feed = client.feed();
    const events: FeedEvent[] = [];
    try {
      const welcomed = new Promise((r) => client.once('welcome', r));
      client.start();
      await welcomed;
      const base = client.welcome!.inoBase;
      const upload = (i: number): Promise<UploadResult> => client.upload(fileBatch(2 * i - 1, ROOT, `f${i}`, base + i, Buffer.from(`file ${i}`)));
      for (let i = 1; i <= 5; i++) await upload(i);
      events.push(...(await readFeedUntil(feed, (e) => e.kind === 'entry' && e.entry.hubSeq === 5)));

      // Hub 1 dies with batches in flight: the client tries the dead URL, then hub 2.
      const inFlight = Array.from({ length: 5 }, (_, i) => upload(6 + i));
      await h1.kill9();
      const results = await Promise.all(inFlight);
      assert.deepEqual(attempts, [h1.url, dead, h2.url]);
      assert.deepEqual(
        steps.map((s) => [s.attempt, s.delayMs]),
        [
          [0, 40],
          [1, 80],
        ],
        'one backoff sequence across the URLs',
      );
      assert.equal(client.url, h2.url);
      assert.equal(client.appliedSeq, 20);
      assert.ok(results.every((r) => r.resolutions.length === 0));
      events.push(...(await readFeedUntil(feed, (e) => e.kind === 'entry' && e.entry.hubSeq === 10)));
      const entries = events.flatMap((e) => (e.kind === 'entry' ? [e.entry.hubSeq] : []));
      assert.deepEqual(entries, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 'every entry once, in order');
      assert.ok(!events.some((e) => e.kind === 'reset'), 'hub 2 continues the same changefeed: no reset');
      assert.deepEqual(events.filter((e) => e.kind === 'snapshot-begin').length, 1, 'only the first follow from 0');

      // A completed handshake reset the backoff: the next failure starts at attempt 0 again.
      const back = new Promise((r) => client.once('backoff', r));
      await h2.kill9();
      assert.deepEqual(((await back) as BackoffStep).attempt, 0);
    } finally {
      await client.close();
      await stop();
    }
  });
});
