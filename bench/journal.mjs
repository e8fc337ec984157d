// Journal benchmark: the disk's raw limits, then the journal under each sync policy, on the same
// file system in one run. Not part of the test suite. After `npm run build`:
//
//   node bench/journal.mjs [--dir DIR] [--seconds S]
//
// Raw figures: write(2)+fdatasync(2) in a loop (the physical limit of acknowledged-durable
// writes), and write(2) alone in a loop (buffered sequential throughput). Journal figures:
// appends/s and MB/s of record payload, for 4 KiB and 64 KiB records and 1, 8, 64 concurrent
// writers, each as a ratio to the raw figure of the same record size.
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
const seconds = Number(arg('--seconds', '1.5'));
const BYTES_CAP = 512 * 1024 * 1024; // no case writes more than this, so the disk is not flooded
const SIZES = [4096, 65536];
const WRITERS = [1, 8, 64];
const DEFAULT_SYNC = { intervalMs: 5, backlogBytes: 2097152 }; // the config schema's defaults

// Every case's files stay until the end of the run: on a file system mounted with `discard`,
// deleting a large file slows fsync for seconds afterwards, which would skew the next case.
const root = fs.mkdtempSync(path.join(baseDir, 'aether-bench-'));
const scratch = () => fs.mkdtempSync(path.join(root, 'case-'));
const now = () => performance.now();

/** Drains the page cache's dirty pages (sync(1)), so one case does not pay for the last one's writeback. */
function settleDisk() {
  try {
    execFileSync('sync');
  } catch {
    // No sync(1): the cases run back to back as they are.
  }
}

function rawLoop(size, withSync) {
  const dir = scratch();
  const file = path.join(dir, 'raw');
  const fd = fs.openSync(file, 'w');
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
  fs.fdatasyncSync(fd);
  fs.closeSync(fd);
  settleDisk();
  return { opsPerSec: ops / elapsed, mbPerSec: (ops * size) / elapsed / 1e6 };
}

async function journalCase(policy, size, writers) {
  const dir = scratch();
  const journal = await Journal.open({
    dir: path.join(dir, 'journal'),
    sync: { policy, ...DEFAULT_SYNC },
    segmentBytes: 67108864,
    registry: new Registry(),
  });
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
  settleDisk();
  return { opsPerSec: appends / elapsed, mbPerSec: (appends * size) / elapsed / 1e6 };
}

const kib = (n) => `${n / 1024} KiB`;
const num = (x, digits = 0) => x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const pad = (s, n) => String(s).padStart(n);
const padEnd = (s, n) => String(s).padEnd(n);

console.log(`Aether journal benchmark: ${baseDir} (${os.cpus().length} CPUs, Node ${process.version}), ${seconds} s a case\n`);

// Fsync-bound cases run first, before the large buffered volumes load the disk.
const raw = {};
const results = [];
const progress = (what) => process.stderr.write(`  ${what}...\n`);
for (const size of SIZES) {
  progress(`raw write+fdatasync ${kib(size)}`);
  raw[size] = { sync: rawLoop(size, true) };
}
const runPolicy = async (policy) => {
  for (const size of SIZES) {
    for (const writers of WRITERS) {
      progress(`${policy} ${kib(size)} x${writers}`);
      results.push({ policy, size, writers, ...(await journalCase(policy, size, writers)) });
    }
  }
};
await runPolicy('immediate');
for (const size of SIZES) {
  progress(`raw buffered write ${kib(size)}`);
  raw[size].buffered = rawLoop(size, false);
}
await runPolicy('interval');
await runPolicy('manual');
fs.rmSync(root, { recursive: true, force: true });

console.log(`${padEnd('raw baseline', 34)}${pad('ops/s', 10)}${pad('MB/s', 10)}`);
for (const size of SIZES) {
  console.log(`${padEnd(`write+fdatasync loop, ${kib(size)}`, 34)}${pad(num(raw[size].sync.opsPerSec), 10)}${pad(num(raw[size].sync.mbPerSec, 1), 10)}`);
  console.log(`${padEnd(`buffered write loop, ${kib(size)}`, 34)}${pad(num(raw[size].buffered.opsPerSec), 10)}${pad(num(raw[size].buffered.mbPerSec, 1), 10)}`);
}
console.log(`\n${padEnd('journal', 11)}${padEnd('record', 8)}${pad('writers', 8)}${pad('appends/s', 12)}${pad('MB/s', 9)}${pad('x raw fsync/s', 15)}${pad('x raw buffered MB/s', 21)}`);
for (const r of results) {
  const vsSync = r.opsPerSec / raw[r.size].sync.opsPerSec;
  const vsBuffered = r.mbPerSec / raw[r.size].buffered.mbPerSec;
  console.log(
    `${padEnd(r.policy, 11)}${padEnd(kib(r.size), 8)}${pad(r.writers, 8)}${pad(num(r.opsPerSec), 12)}${pad(num(r.mbPerSec, 1), 9)}${pad(num(vsSync, 2), 15)}${pad(num(vsBuffered, 2), 21)}`,
  );
}

const find = (policy, size, writers) => results.find((r) => r.policy === policy && r.size === size && r.writers === writers);
console.log('\ngoals');
for (const size of SIZES) {
  const x = find('immediate', size, 64).opsPerSec / raw[size].sync.opsPerSec;
  console.log(`  immediate, 64 writers, ${kib(size)}: ${num(x, 1)}x the single-writer write+fdatasync rate (goal >= 10x): ${x >= 10 ? 'met' : 'NOT met'}`);
}
for (const writers of WRITERS) {
  const share = find('interval', 4096, writers).mbPerSec / raw[4096].buffered.mbPerSec;
  console.log(`  interval, 4 KiB, ${writers} writer(s): ${num(share * 100)}% of raw buffered write throughput (goal >= 50%): ${share >= 0.5 ? 'met' : 'NOT met'}`);
}
