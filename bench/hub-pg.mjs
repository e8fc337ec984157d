// Hubs on a shared PostgreSQL database: commits/s and propagation latency with one hub process
// versus two hub processes on the same database, in one run, with the same load (writers that
// each commit one 4 KiB file per batch and wait for the ack; a follower on every hub). The embedded
// store is measured too, as the reference. Propagation latency: from a writer's upload() call
// until a follower receives the changefeed entry (through the other hub, when there are two).
// Run after `npm run build`, with a PostgreSQL server (scripts/pg-test-server.sh prints its URL):
//   AETHER_TEST_PG_URL=postgres://… node bench/hub-pg.mjs [commitsPerWriter] [writers]
// Creates and drops its own databases. Not part of the tests.
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { ReconnectBackoff } from '../packages/aether-remote/dist/src/bridge/backoff.js';
import { BridgeClient } from '../packages/aether-remote/dist/src/bridge/client.js';
import { blocksOfContent } from '../packages/aether-remote/dist/src/protocol/blocks.js';

const perWriter = Number(process.argv[2] ?? 250);
const writers = Number(process.argv[3] ?? 4);
const adminUrl = process.env.AETHER_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:55432/postgres';
const token = 'bench';

async function admin(sql) {
  const c = new pg.Client({ connectionString: adminUrl });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

async function newDatabase() {
  const name = `aether_bench_${randomUUID().replaceAll('-', '')}`;
  await admin(`CREATE DATABASE ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

async function startHub(storeArgs) {
  const proc = spawn(process.execPath, ['packages/aether-remote/bin/aether.js', 'hub', '--listen', '127.0.0.1:0', ...storeArgs, '--token', token, '--metrics-listen', 'off'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  proc.stdout.setEncoding('utf8').on('data', (d) => (out += d));
  while (!/metrics: +\S+\n/.test(out)) {
    if (proc.exitCode !== null) throw new Error(`hub exited with ${proc.exitCode}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return { url: /hub listening on (\S+)/.exec(out)[1], stop: () => new Promise((r) => (proc.kill('SIGTERM'), proc.once('exit', r))) };
}

async function connect(url, followFrom) {
  const c = new BridgeClient({ url, token, mountId: randomUUID(), ...(followFrom !== undefined ? { followFrom } : {}), backoff: new ReconnectBackoff({ start_ms: 100, max_ms: 1000, multiplier: 2, jitter_percent: 0 }) });
  c.start();
  await new Promise((r) => c.once('welcome', r));
  return c;
}

const pct = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];

/** `writers` writers spread over the hubs, a follower on each hub; returns commits/s and latencies. */
async function run(label, urls) {
  const sent = new Map(); // `${mountId}/${journalSeq}` → upload() time
  const latencies = [];
  const followers = await Promise.all(urls.map((u) => connect(u, 0)));
  const total = writers * perWriter;
  // Each follower counts the entries it has seen; the run ends when every follower has all of them.
  const seen = followers.map(() => 0);
  const done = followers.map(
    (f, i) =>
      new Promise((resolve) => {
        void (async () => {
          for await (const e of f.feed()) {
            if (e.kind !== 'entry') continue;
            const t = sent.get(`${e.entry.mountId}/${e.entry.journalSeq}`);
            // With two hubs, count only the follower on the hub the writer did not use: cross-hub propagation.
            if (t !== undefined && (urls.length === 1 || t.hub !== i)) latencies.push(performance.now() - t.at);
            if (++seen[i] === total) return resolve();
          }
        })();
      }),
  );
  const clients = await Promise.all(Array.from({ length: writers }, (_, w) => connect(urls[w % urls.length])));
  const t0 = performance.now();
  await Promise.all(
    clients.map(async (c, w) => {
      for (let i = 1; i <= perWriter; i++) {
        const ino = c.welcome.inoBase + i;
        const b = blocksOfContent(randomBytes(4096));
        const entries = [
          { seq: 2 * i - 1, op: { t: 'mknode', parent: 1, name: `w${c.mountId.slice(0, 8)}-${i}`, ino, kind: 'file', mode: 0o644, uid: 0, gid: 0, timeMs: Date.now() } },
          { seq: 2 * i, op: { t: 'content', ino, size: b.size, blocks: b.blocks, timeMs: Date.now() } },
        ];
        sent.set(`${c.mountId}/${2 * i}`, { at: performance.now(), hub: w % urls.length });
        await c.upload({ upToSeq: 2 * i, baseSeq: 0, entries, chunks: b.chunks });
      }
    }),
  );
  const commitS = (performance.now() - t0) / 1000;
  await Promise.all(done);
  await Promise.all([...clients, ...followers].map((c) => c.close()));
  console.log(
    `${label.padEnd(34)} ${String(total).padStart(5)} commits by ${writers} writers: ${(total / commitS).toFixed(0).padStart(5)} commits/s; ` +
      `propagation p50 ${pct(latencies, 50).toFixed(1)} ms, p99 ${pct(latencies, 99).toFixed(1)} ms`,
  );
}

const dir = mkdtempSync(join(tmpdir(), 'aether-hub-pg-bench-'));
try {
  {
    const h = await startHub(['--data', dir]);
    await run('embedded store, one hub', [h.url]);
    await h.stop();
  }
  {
    const db = await newDatabase();
    const h = await startHub(['--store', db.url]);
    await run('PostgreSQL, one hub', [h.url]);
    await h.stop();
    await db.drop();
  }
  {
    const db = await newDatabase();
    const [h1, h2] = [await startHub(['--store', db.url]), await startHub(['--store', db.url])];
    await run('PostgreSQL, two hubs (cross-hub)', [h1.url, h2.url]);
    await Promise.all([h1.stop(), h2.stop()]);
    await db.drop();
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
