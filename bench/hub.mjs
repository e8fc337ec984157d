// Upload throughput to a real `aether hub` process over loopback: commits/s for small batches,
// bytes/s for bulk data, and a re-upload of the same data (chunk dedup: nothing but metadata
// travels). Run after `npm run build`: `node bench/hub.mjs [bulkMiB]` (ZERO_MASK=1: see the
// client's zeroMaskKey option; HUB_PROF=1: CPU profile of the hub into /tmp/hubprof). Not part of the tests.
/* global fetch */
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { ReconnectBackoff } from '../packages/aether-remote/dist/src/bridge/backoff.js';
import { BridgeClient } from '../packages/aether-remote/dist/src/bridge/client.js';
import { blocksOfContent } from '../packages/aether-remote/dist/src/protocol/blocks.js';

const bulkMiB = Number(process.argv[2] ?? 256);
const data = mkdtempSync(join(tmpdir(), 'aether-hub-bench-'));
const token = 'bench';
const hub = spawn(process.execPath, [...(process.env.HUB_PROF ? ['--cpu-prof', '--cpu-prof-dir=/tmp/hubprof'] : []), 'packages/aether-remote/bin/aether.js', 'hub', '--listen', '127.0.0.1:0', '--data', data, '--token', token, '--metrics-listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'inherit'] });
let out = '';
hub.stdout.setEncoding('utf8').on('data', (d) => (out += d));
while (!/metrics: +\S+\n/.test(out)) await new Promise((r) => setTimeout(r, 20));
const url = /hub listening on (\S+)/.exec(out)[1];
const metricsUrl = /metrics: +(\S+)/.exec(out)[1];
const scrape = async (sample) => Number((await (await fetch(metricsUrl)).text()).split('\n').find((l) => l.startsWith(`${sample} `))?.split(' ')[1] ?? NaN);

// ZERO_MASK=1: frames masked with a zero key (the client's `zeroMaskKey` option).
const zeroMaskKey = process.env.ZERO_MASK === '1';
console.log(`hub ${url}, masking ${zeroMaskKey ? 'with a zero key (skipped)' : 'with random keys (RFC default)'}`);
const client = new BridgeClient({ url, token, mountId: randomUUID(), zeroMaskKey, backoff: new ReconnectBackoff({ start_ms: 100, max_ms: 1000, multiplier: 2, jitter_percent: 0 }) });
client.start();
await new Promise((r) => client.once('welcome', r));
const base = client.welcome.inoBase;
let seq = 0;
let ino = 0;

function fileOps(name, body) {
  const i = base + ++ino;
  const b = blocksOfContent(body);
  const entries = [
    { seq: ++seq, op: { t: 'mknode', parent: 1, name, ino: i, kind: 'file', mode: 0o644, uid: 0, gid: 0, timeMs: Date.now() } },
    { seq: ++seq, op: { t: 'content', ino: i, size: b.size, blocks: b.blocks, timeMs: Date.now() } },
  ];
  return { entries, chunks: b.chunks };
}

function batchOf(files) {
  const entries = [];
  const chunks = new Map();
  for (const f of files) {
    entries.push(...f.entries);
    for (const [h, d] of f.chunks) chunks.set(h, d);
  }
  return { upToSeq: entries[entries.length - 1].seq, baseSeq: 0, entries, chunks };
}

const pct = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];

// 1. One small file (4 KiB) per batch, one batch at a time: each is a durable commit.
{
  const n = 1000;
  const batches = Array.from({ length: n }, (_, i) => batchOf([fileOps(`small-${i}`, randomBytes(4096))]));
  const lat = [];
  const t0 = performance.now();
  for (const b of batches) {
    const s = performance.now();
    await client.upload(b);
    lat.push(performance.now() - s);
  }
  const s = (performance.now() - t0) / 1000;
  console.log(`small batches (1 file of 4 KiB each): ${(n / s).toFixed(0)} commits/s, ack latency p50 ${pct(lat, 50).toFixed(2)} ms, p99 ${pct(lat, 99).toFixed(2)} ms`);
}

// 2. Many small files per batch (as a coalescing bridge would send them).
{
  const files = 10_000;
  const perBatch = 500;
  const batches = [];
  for (let i = 0; i < files; i += perBatch) batches.push(batchOf(Array.from({ length: perBatch }, (_, j) => fileOps(`many-${i + j}`, randomBytes(4096)))));
  const t0 = performance.now();
  for (const b of batches) await client.upload(b);
  const s = (performance.now() - t0) / 1000;
  console.log(`batches of ${perBatch} files of 4 KiB: ${(files / s).toFixed(0)} files/s, ${(batches.length / s).toFixed(1)} commits/s, ${((files * 4096) / s / 2 ** 20).toFixed(1)} MiB/s`);
}

// 3. Bulk data: 1 MiB files, 16 per batch.
const bulk = Array.from({ length: bulkMiB }, () => randomBytes(1 << 20));
async function uploadBulk(label) {
  const inBefore = await scrape('aether_hub_bytes_in_total{kind="chunk"}');
  const th = performance.now();
  const files = bulk.map((body, i) => fileOps(`${label}-${i}`, body));
  const hashMs = performance.now() - th;
  const batches = [];
  for (let i = 0; i < files.length; i += 16) batches.push(batchOf(files.slice(i, i + 16)));
  const t0 = performance.now();
  for (const b of batches) await client.upload(b);
  const s = (performance.now() - t0) / 1000;
  const chunkBytes = (await scrape('aether_hub_bytes_in_total{kind="chunk"}')) - inBefore;
  console.log(
    `${label}: ${bulkMiB} MiB in ${batches.length} commits: ${(bulkMiB / s).toFixed(0)} MiB/s of file data, ${(chunkBytes / s / 2 ** 20).toFixed(0)} MiB/s of chunk bytes on the wire (${(chunkBytes / 2 ** 20).toFixed(1)} MiB), ${(batches.length / s).toFixed(1)} commits/s; hashing ${((bulkMiB / hashMs) * 1000).toFixed(0)} MiB/s (not included)`,
  );
}
await uploadBulk('bulk');
await uploadBulk('same-again');

await client.close();
hub.kill('SIGTERM');
await new Promise((r) => hub.once('exit', r));
rmSync(data, { recursive: true, force: true });
