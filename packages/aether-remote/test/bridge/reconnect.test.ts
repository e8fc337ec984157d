import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigStore } from '@aether/core';
import { ReconnectBackoff } from '../../src/bridge/backoff.js';
import { BridgeClient } from '../../src/bridge/client.js';
import type { BackoffStep } from '../../src/bridge/backoff.js';
import { WebSocket } from 'ws';
import { metricValue, quickBackoff, spawnHub, tempDir, TOKEN, type HubProcess } from '../hub/helpers.js';
import { CuttingProxy } from '../cutting-proxy.js';
import { seededRandom } from '../seeded-random.js';

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', () => resolve()));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** Records every backoff step and the time of every connection attempt. */
function observe(c: BridgeClient): { steps: BackoffStep[]; attemptsAt: number[]; until(n: number, timeoutMs?: number): Promise<void> } {
  const steps: BackoffStep[] = [];
  const attemptsAt: number[] = [];
  c.on('backoff', (s: BackoffStep) => steps.push(s));
  c.on('attempt', () => attemptsAt.push(performance.now()));
  return {
    steps,
    attemptsAt,
    async until(n, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (steps.length < n) {
        if (Date.now() > deadline) throw new Error(`only ${steps.length} backoff steps in ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 5));
      }
    },
  };
}

/** A hub process pinging every `ms`, and a client connected to it that keeps its log lines. */
async function connectedToHubPinging(ms: number): Promise<{ hub: HubProcess; client: BridgeClient; lines: string[] }> {
  const hub = await spawnHub(['--listen', '127.0.0.1:0', '--data', tempDir(), '--token', TOKEN, '--metrics-listen', 'off', '--heartbeat-ms', String(ms)]);
  const lines: string[] = [];
  const client = new BridgeClient({ url: hub.url, token: TOKEN, mountId: randomUUID(), backoff: quickBackoff(), log: (l) => lines.push(l) });
  const welcomed = new Promise<void>((r) => client.once('welcome', () => r()));
  client.start();
  await welcomed;
  return { hub, client, lines };
}

const expected = (n: number, start: number, mult: number, max: number) => Math.min(max, start * mult ** n);

/** Each retry waited at least its chosen delay (timers never fire early) and not much longer. */
function assertWaited(o: { steps: BackoffStep[]; attemptsAt: number[] }, from: number, count: number, slackMs: number): void {
  for (let i = from; i < from + count; i++) {
    const gap = o.attemptsAt[i + 1]! - o.attemptsAt[i]!;
    const delay = o.steps[i]!.delayMs;
    assert.ok(gap >= delay - 2, `retry ${i}: waited ${gap.toFixed(1)} ms for a delay of ${delay} ms`);
    assert.ok(gap <= delay + slackMs, `retry ${i}: waited ${gap.toFixed(1)} ms for a delay of ${delay} ms`);
  }
}

describe('reconnect backoff against a real hub process', () => {
  it('jitter 0: delays follow start × multiplier^n capped at max; a completed handshake resets them; metrics follow', async () => {
    const port = await freePort();
    const data = tempDir();
    const client = new BridgeClient({ url: `ws://127.0.0.1:${port}`, token: TOKEN, mountId: randomUUID(), backoff: new ReconnectBackoff({ start_ms: 40, max_ms: 320, multiplier: 2, jitter_percent: 0 }) });
    const o = observe(client);
    let hub: HubProcess | undefined;
    try {
      client.start();
      await o.until(5);
      // The hub comes up; the client gets in on its next attempt.
      const welcomed = new Promise((r) => client.once('welcome', r));
      hub = await spawnHub(['--listen', `127.0.0.1:${port}`, '--data', data, '--token', TOKEN, '--metrics-listen', 'off']);
      await welcomed;
      const down = o.steps.length;
      assert.deepEqual(
        o.steps.map((s) => s.delayMs),
        o.steps.map((_, n) => expected(n, 40, 2, 320)),
      );
      assertWaited(o, 0, down, 250);
      assert.equal(await metricValue(client.registry, 'aether_bridge_connected'), 1);
      assert.equal(await metricValue(client.registry, 'aether_bridge_reconnect_attempts_total'), down);
      const hist = (await client.registry.getSingleMetric('aether_bridge_reconnect_delay_ms')!.get()).values as { metricName?: string; value: number }[];
      assert.equal(hist.find((v) => v.metricName === 'aether_bridge_reconnect_delay_ms_sum')?.value, o.steps.reduce((x, s) => x + s.delayMs, 0));
      assert.equal(hist.find((v) => v.metricName === 'aether_bridge_reconnect_delay_ms_count')?.value, down);

      // kill -9: the sequence starts again at start_ms.
      await hub.kill9();
      hub = undefined;
      await o.until(down + 3);
      assert.deepEqual(
        o.steps.slice(down).map((s) => [s.attempt, s.delayMs]),
        [
          [0, 40],
          [1, 80],
          [2, 160],
        ],
      );
      assert.equal(await metricValue(client.registry, 'aether_bridge_connected'), 0);
      assert.equal(client.state, 'backing-off');
    } finally {
      await client.close();
      await hub?.stop();
    }
  });

  it('jitter 20: every real delay lies within ±20% of its base and never above max_ms', async () => {
    const port = await freePort();
    const client = new BridgeClient({
      url: `ws://127.0.0.1:${port}`,
      token: TOKEN,
      mountId: randomUUID(),
      backoff: new ReconnectBackoff({ start_ms: 20, max_ms: 100, multiplier: 2, jitter_percent: 20 }, seededRandom(2024)),
    });
    const o = observe(client);
    try {
      client.start();
      await o.until(10);
      for (const s of o.steps) {
        assert.equal(s.baseMs, expected(s.attempt, 20, 2, 100));
        assert.ok(s.delayMs >= s.baseMs * 0.8 && s.delayMs <= s.baseMs * 1.2 && s.delayMs <= 100, `${s.attempt}: ${s.delayMs} for base ${s.baseMs}`);
      }
      assert.ok(o.steps.some((s) => s.delayMs !== s.baseMs), 'jitter was applied');
      assertWaited(o, 0, 9, 250);
    } finally {
      await client.close();
    }
  });

  it('a config reload while backing off applies from the next attempt', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'aether-reconnect-'));
    const file = join(cwd, 'aether.toml');
    writeFileSync(file, '[bridge.reconnect_backoff]\nstart_ms = 30\nmax_ms = 1000\nmultiplier = 2\njitter_percent = 0\n');
    const config = new ConfigStore({ cwd, env: {} });
    const backoff = ReconnectBackoff.fromConfig(config);
    const port = await freePort();
    const client = new BridgeClient({ url: `ws://127.0.0.1:${port}`, token: TOKEN, mountId: randomUUID(), backoff });
    const o = observe(client);
    try {
      client.start();
      await o.until(2);
      writeFileSync(file, '[bridge.reconnect_backoff]\nstart_ms = 5\nmax_ms = 50\nmultiplier = 3\njitter_percent = 0\n');
      assert.ok(config.reload().ok);
      const at = o.steps.length;
      await o.until(at + 2);
      assert.deepEqual(o.steps.slice(0, 2).map((s) => s.delayMs), [30, 60]);
      assert.deepEqual(
        o.steps.slice(at, at + 2).map((s) => s.delayMs),
        [at, at + 1].map((n) => expected(n, 5, 3, 50)),
      );
    } finally {
      await client.close();
      backoff.close();
    }
  });

  it('a hub that goes silent without closing (SIGSTOP) is named as the problem after 1.5 heartbeats, given up after 3 with offline_since = when last heard, and the reconnect is logged', async () => {
    const { hub, client, lines } = await connectedToHubPinging(400);
    assert.match(hub.stdout(), /pings: +every 400 ms/);
    try {
      assert.deepEqual(lines, [`connected to ${hub.url}`]);
      // The hub's pings keep the client hearing it: no problem over several heartbeats.
      await new Promise((r) => setTimeout(r, 1300));
      assert.equal(client.problem, null);
      assert.ok(Date.now() - client.lastHeardMs! < 600, `last heard ${Date.now() - client.lastHeardMs!} ms ago`);
      assert.equal(await metricValue(client.registry, 'aether_bridge_last_heard_timestamp_seconds'), client.lastHeardMs! / 1000);

      hub.proc.kill('SIGSTOP');
      const stoppedAt = Date.now();
      let silentProblem: string | null = null;
      const lost = new Promise<number>((r) => client.once('disconnect', () => r(Date.now())));
      while (client.state === 'online' && silentProblem === null) {
        silentProblem = client.problem;
        await new Promise((r) => setTimeout(r, 10));
      }
      assert.equal(client.state, 'online', 'named while still connected');
      assert.match(silentProblem ?? '', /^nothing from the hub for \d+\.\d s \(it pings every 400 ms; reconnecting after 1200 ms of silence\)$/);
      const heard = client.lastHeardMs!;
      assert.ok(heard <= stoppedAt + 5);
      const lostAt = await lost;
      assert.ok(lostAt - heard >= 1200, `given up ${lostAt - heard} ms after the hub was last heard`);
      assert.equal(client.offlineSinceMs, heard, 'offline since the hub was last heard, not since the silence was noticed');
      assert.equal(client.problem, 'nothing from the hub for 1200 ms');

      const back = new Promise<void>((r) => client.once('welcome', () => r()));
      hub.proc.kill('SIGCONT');
      await back;
      assert.equal(client.problem, null);
      assert.equal(client.offlineSinceMs, null);
      assert.match(lines.at(-1) ?? '', new RegExp(`^connected to ${hub.url.replace(/[.]/g, '\\.')} again, offline for \\d+\\.\\d s \\(nothing from the hub for 1200 ms\\)$`));
    } finally {
      hub.proc.kill('SIGCONT');
      await client.close();
      await hub.stop();
    }
  });

  it("with only the way to the hub cut (its pings still arrive), the client names it while connected, from what the hub's pings say it has read; the hub drops it; it is back once the way is open", async () => {
    const hub = await spawnHub(['--listen', '127.0.0.1:0', '--data', tempDir(), '--token', TOKEN, '--metrics-listen', 'off', '--heartbeat-ms', '400']);
    const proxy = new CuttingProxy(Number(new URL(hub.url).port), seededRandom(7));
    proxy.cutting = false;
    const lines: string[] = [];
    const client = new BridgeClient({ url: `ws://127.0.0.1:${await proxy.listen()}`, token: TOKEN, mountId: randomUUID(), backoff: quickBackoff(), log: (l) => lines.push(l) });
    try {
      const welcomed = new Promise<void>((r) => client.once('welcome', () => r()));
      client.start();
      await welcomed;
      // The hub reads the answers to its pings: no problem over several heartbeats.
      await new Promise((r) => setTimeout(r, 1300));
      assert.equal(client.problem, null);

      proxy.blackholeToHub = true;
      const lost = new Promise<void>((r) => client.once('disconnect', () => r()));
      let problem: string | null = null;
      while (client.state === 'online' && problem === null) {
        problem = client.problem;
        await new Promise((r) => setTimeout(r, 10));
      }
      assert.equal(client.state, 'online', 'named while still connected');
      assert.match(problem ?? '', /^the hub has read nothing from this mount for \d+\.\d s: what it sends does not reach the hub, or the hub stopped reading \(it drops a mount it hears nothing from for 1200 ms\)$/);
      assert.ok(Date.now() - client.lastHeardMs! < 600, "the hub's pings still arrive");
      await lost;
      assert.equal(client.problem, 'connection closed (1001 heartbeat timeout)');

      const back = new Promise<void>((r) => client.once('welcome', () => r()));
      proxy.blackholeToHub = false;
      await back;
      assert.equal(client.problem, null);
      assert.equal(hub.stderr().match(/aether hub: dropping \S+ \(mount \S+\): no answer to the last 3 pings/g)?.length, 1, 'logged once, while the close handshake waited');
    } finally {
      await client.close();
      await proxy.close();
      await hub.stop();
    }
  });

  it('the hub drops a connection that answers none of three pings, and keeps one that answers', async () => {
    const hub = await spawnHub(['--listen', '127.0.0.1:0', '--data', tempDir(), '--token', TOKEN, '--metrics-listen', 'off', '--heartbeat-ms', '100']);
    const open = (autoPong: boolean): { ws: WebSocket; pings: () => number; closed: Promise<number> } => {
      const ws = new WebSocket(hub.url, { autoPong });
      let pings = 0;
      ws.on('ping', () => pings++);
      ws.on('open', () => ws.send(JSON.stringify({ t: 'hello', v: 1, token: TOKEN, mountId: randomUUID() })));
      return { ws, pings: () => pings, closed: new Promise((r) => ws.once('close', (code) => r(code))) };
    };
    try {
      const mute = open(false);
      const live = open(true);
      assert.equal(await mute.closed, 1001);
      assert.equal(mute.pings(), 3, 'dropped at the beat after its third unanswered ping');
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(live.ws.readyState, WebSocket.OPEN);
      assert.ok(live.pings() >= 6, `${live.pings()} pings`);
      assert.match(hub.stderr(), /^\S+Z aether hub: dropping \S+ \(mount \S+\): no answer to the last 3 pings \(one every 100 ms\)$/m);
      live.ws.close();
    } finally {
      await hub.stop();
    }
  });

  it('the hub keeps a connection whose answers wait behind a frame that takes longer than three heartbeats to arrive over a slow way: its bytes coming in count', async () => {
    const hub = await spawnHub(['--listen', '127.0.0.1:0', '--data', tempDir(), '--token', TOKEN, '--metrics-listen', 'off', '--heartbeat-ms', '300']);
    const proxy = new CuttingProxy(Number(new URL(hub.url).port), seededRandom(8));
    proxy.cutting = false;
    const ws = new WebSocket(`ws://127.0.0.1:${await proxy.listen()}`);
    let closed: number | undefined;
    ws.on('close', (code) => (closed = code));
    const replies: string[] = [];
    ws.on('message', (data) => replies.push(String(data)));
    try {
      await new Promise((r) => ws.once('open', r));
      ws.send(JSON.stringify({ t: 'hello', v: 2, token: TOKEN, mountId: randomUUID() }));
      while (!replies.some((r) => r.includes('"welcome"'))) await new Promise((r) => setTimeout(r, 10));
      // 600 KB at 100 KB/s: 6 s, 20 heartbeats, before the hub has the whole frame and can read the pongs behind it.
      proxy.toHubBytesPerSecond = 100_000;
      ws.send(Buffer.alloc(600_000, 7));
      while (!replies.some((r) => r.includes('BAD_CHUNK')) && closed === undefined) await new Promise((r) => setTimeout(r, 20));
      assert.equal(closed, undefined, hub.stderr());
      assert.doesNotMatch(hub.stderr(), /dropping/);
    } finally {
      ws.close();
      await proxy.close();
      await hub.stop();
    }
  });

  it("a stall of the mount's own process longer than three heartbeats, but shorter than the hub's patience, keeps the connection: the pings waiting unread count", async () => {
    const { hub, client, lines } = await connectedToHubPinging(1000);
    try {
      let lost = false;
      client.on('disconnect', () => (lost = true));
      // Just after a ping: the client would give up at +3 s, the hub at its beat at +4 s.
      const heard = client.lastHeardMs;
      while (client.lastHeardMs === heard) await new Promise((r) => setTimeout(r, 5));
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 3400);
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal(lost, false, lines.join('\n'));
      assert.equal(client.state, 'online');
      assert.ok(!lines.some((l) => l.startsWith('nothing from the hub')), lines.join('\n'));
    } finally {
      await client.close();
      await hub.stop();
    }
  });
});
