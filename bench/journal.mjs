// Journal benchmark: the disk's raw limits, then the journal under each sync policy, on the same
// file system in one run. Not part of the test suite. After `npm run build`:
//
//   node bench/journal.mjs [--dir DIR] [--seconds S] [--reps N]
//
// Raw figures: write(2)+fdatasync(2) in a loop (the physical limit of acknowledged-durable
// writes), and write(2) alone in a loop (buffered sequential throughput). Journal figures:
// appends/s and MB/s of record payload, for 4 KiB and 64 KiB records and 1, 8, 64 concurrent
// writers, under `immediate`, `interval` (the default 5 ms / 2 MiB) and `manual`.
//
// The machine this runs on is shared and its disk is virtual, so figures drift by 2x within a
// minute. Each journal case therefore alternates with the raw loop it is compared with
// (write+fdatasync for `immediate`, buffered write for the others; same record size), N times,
// and the ratios are medians of those adjacent pairs.
import { Buffer } from 'node:buffer';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Registry } from 'prom-client';
import { Journal } from '../packages/aether/dist/src/runtime/journal/index.js';

const args = process.argv.slice(2);
const arg = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] ? args[i + 1] : fallback;
};
const baseDir = path.resolve(arg('--dir', os.tmpdir()));
const seconds = Number(arg('--seconds', '1'));
const reps = Number(arg('--reps', '3'));
const BYTES_CAP = 256 * 1024 * 1024; // no run writes more than this, so the disk is not flooded
const SIZES = [4096, 65536];
const WRITERS = [1, 8, 64];
const DEFAULT_SYNC = { intervalMs: 5, backlogBytes: 2097152 }; // the config schema's defaults

const root = fs.mkdtempSync(path.join(baseDir, 'aether-bench-'));
const scratch = () => fs.mkdtempSync(path.join(root, 'run-'));
const now = () => performance.now();
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Removes a run's files and drains dirty pages (sync(1)), so the next run starts level. */
function cleanUp(dir) {
  fs.rmSync(dir, { recursive: true, force: true });
  try {
    execFileSync('sync');
  } catch {
    // No sync(1): the runs follow each other as they are.
  }
}

function rawLoop(size, withSync) {
  const dir = scratch();
  const fd = fs.openSync(path.join(dir, 'raw'), 'w');
  const buf = Buffer.alloc(size, 0x5a);
  let ops = 0;
  const t0 = now();
  const end = t0 + seconds * 1000;
  while (now() < end && ops * size < BYTES_CAP) {
    fs.writeSync(fd, buf);
    if (withSync) fs.fdatasyncSync(fd);
    ops++;
  }
  const elapsed = (now() - t0) / 1000;
  fs.closeSync(fd);
  cleanUp(dir);
  return { opsPerSec: ops / elapsed, mbPerSec: (ops * size) / elapsed / 1e6 };
}

async function journalRun(policy, size, writers) {
  const dir = scratch();
  const journal = await Journal.open({ dir: path.join(dir, 'journal'), sync: { policy, ...DEFAULT_SYNC }, segmentBytes: 67108864, registry: new Registry() });
  const payload = Buffer.alloc(size, 0x5a);
  let appends = 0;
  const t0 = now();
  const end = t0 + seconds * 1000;
  const writer = async () => {
    while (now() < end && appends * size < BYTES_CAP) {
      await journal.append(1, payload);
      appends++;
    }
  };
  await Promise.all(Array.from({ length: writers }, writer));
  const elapsed = (now() - t0) / 1000;
  await journal.close();
  cleanUp(dir);
  return { opsPerSec: appends / elapsed, mbPerSec: (appends * size) / elapsed / 1e6 };
}

/** `reps` alternating pairs of (raw loop, journal run); medians of the figures and of the ratios. */
async function journalCase(policy, size, writers) {
  const withSync = policy === 'immediate';
  const pairs = [];
  for (let r = 0; r < reps; r++) {
    const raw = rawLoop(size, withSync);
    const j = await journalRun(policy, size, writers);
    pairs.push({ raw, j, ratio: withSync ? j.opsPerSec / raw.opsPerSec : j.mbPerSec / raw.mbPerSec });
  }
  return {
    policy,
    size,
    writers,
    opsPerSec: median(pairs.map((p) => p.j.opsPerSec)),
    mbPerSec: median(pairs.map((p) => p.j.mbPerSec)),
    rawOpsPerSec: median(pairs.map((p) => p.raw.opsPerSec)),
    rawMbPerSec: median(pairs.map((p) => p.raw.mbPerSec)),
    ratio: median(pairs.map((p) => p.ratio)),
    ratios: pairs.map((p) => p.ratio),
  };
}

const kib = (n) => `${n / 1024} KiB`;
const num = (x, digits = 0) => x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const pad = (s, n) => String(s).padStart(n);
const padEnd = (s, n) => String(s).padEnd(n);
const progress = (what) => process.stderr.write(`  ${what}...\n`);

const baseline = {};
for (const size of SIZES) {
  progress(`raw loops ${kib(size)}`);
  baseline[size] = { sync: rawLoop(size, true), buffered: rawLoop(size, false) };
}
const results = [];
for (const policy of ['immediate', 'interval', 'manual']) {
  for (const size of SIZES) {
    for (const writers of WRITERS) {
      progress(`${policy} ${kib(size)} x${writers}`);
      results.push(await journalCase(policy, size, writers));
    }
  }
}
fs.rmSync(root, { recursive: true, force: true });

console.log(`Aether journal benchmark: ${baseDir} (${os.cpus().length} CPUs, Node ${process.version}), ${seconds} s a run, ${reps} pairs a case\n`);
console.log(`${padEnd('raw baseline (start of run)', 34)}${pad('ops/s', 10)}${pad('MB/s', 10)}`);
for (const size of SIZES) {
  console.log(`${padEnd(`write+fdatasync loop, ${kib(size)}`, 34)}${pad(num(baseline[size].sync.opsPerSec), 10)}${pad(num(baseline[size].sync.mbPerSec, 1), 10)}`);
  console.log(`${padEnd(`buffered write loop, ${kib(size)}`, 34)}${pad(num(baseline[size].buffered.opsPerSec), 10)}${pad(num(baseline[size].buffered.mbPerSec, 1), 10)}`);
}
console.log(
  `\n${padEnd('journal', 11)}${padEnd('record', 8)}${pad('writers', 8)}${pad('appends/s', 12)}${pad('MB/s', 9)}   ${padEnd('adjacent raw loop', 30)}${pad('ratio', 8)}  ratios of the pairs`,
);
for (const r of results) {
  const raw = r.policy === 'immediate' ? `write+fdatasync ${num(r.rawOpsPerSec)}/s` : `buffered write ${num(r.rawMbPerSec, 1)} MB/s`;
  console.log(
    `${padEnd(r.policy, 11)}${padEnd(kib(r.size), 8)}${pad(r.writers, 8)}${pad(num(r.opsPerSec), 12)}${pad(num(r.mbPerSec, 1), 9)}   ${padEnd(raw, 30)}${pad(num(r.ratio, 2), 8)}  ${r.ratios.map((x) => num(x, 2)).join(' ')}`,
  );
}

const find = (policy, size, writers) => results.find((r) => r.policy === policy && r.size === size && r.writers === writers);
console.log('\ngoals (median ratios against the adjacent raw loop)');
for (const size of SIZES) {
  const x = find('immediate', size, 64).ratio;
  console.log(`  immediate, 64 writers, ${kib(size)}: ${num(x, 1)}x the single-writer write+fdatasync rate (goal >= 10x): ${x >= 10 ? 'met' : 'NOT met'}`);
}
for (const writers of WRITERS) {
  const share = find('interval', 4096, writers).ratio;
  console.log(`  interval, 4 KiB, ${writers} writer(s): ${num(share * 100)}% of raw buffered write throughput (goal >= 50%): ${share >= 0.5 ? 'met' : 'NOT met'}`);
}
