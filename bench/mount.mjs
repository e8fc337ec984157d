// Runs the same workloads, in one run on the same disk, on a plain directory, bindfs -o big_writes,
// rclone mount --vfs-cache-mode writes and an Aether local-mode mount; prints every figure and
// Aether's ratio to each peer. Needs root, /dev/fuse, and Debian's bindfs and rclone (installed here
// when missing). Usage: node bench/mount.mjs [--rounds N]
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const rounds = Number(process.argv[process.argv.indexOf('--rounds') + 1] || 3) || 3;
const WORKLOADS = [
  ['seq-write', 'seq write 256 MiB', 'MB/s'],
  ['seq-read', 'seq read 256 MiB', 'MB/s'],
  ['create', 'create 2000 x 4 KiB', 'files/s'],
  ['stat', 'stat 2000', 'ops/s'],
  ['read-small', 'read 2000 x 4 KiB', 'files/s'],
  ['untar', 'extract npm tarball', 's'],
  ['rm', 'rm -r', 's'],
  ['write-fsync', '500 x 4 KiB write+fsync', 'ops/s'],
];

function ensureTools() {
  const missing = ['bindfs', 'rclone'].filter((t) => spawnSync('which', [t]).status !== 0);
  if (missing.length) execFileSync('bash', ['-c', `apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${missing.join(' ')} >/dev/null`], { stdio: 'inherit' });
}

function tarball(work) {
  const dir = join(work, 'tarball');
  mkdirSync(dir, { recursive: true });
  execFileSync('npm', ['pack', 'lodash@4.17.21', '--silent', '--pack-destination', dir], { stdio: ['ignore', 'ignore', 'inherit'] });
  return join(dir, readdirSync(dir).find((f) => f.endsWith('.tgz')));
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitMounted(mnt, child) {
  for (let i = 0; i < 200; i++) {
    if (child && child.exitCode !== null) throw new Error(`mount process for ${mnt} exited with ${child.exitCode}`);
    const r = spawnSync('mountpoint', ['-q', mnt]);
    if (r.status === 0) return;
    await sleep(50);
  }
  throw new Error(`${mnt} did not mount`);
}

function unmount(mnt) {
  spawnSync('fusermount3', ['-u', '-z', mnt]);
  spawnSync('fusermount', ['-u', '-z', mnt]);
}

const TARGETS = {
  plain: async (base) => ({ dir: join(base, 'data'), stop: async () => {} }),
  bindfs: async (base) => {
    const src = join(base, 'src');
    const mnt = join(base, 'mnt');
    mkdirSync(src);
    mkdirSync(mnt);
    execFileSync('bindfs', ['-o', 'big_writes', src, mnt]);
    await waitMounted(mnt);
    return { dir: mnt, stop: async () => unmount(mnt) };
  },
  rclone: async (base) => {
    const src = join(base, 'src');
    const mnt = join(base, 'mnt');
    mkdirSync(src);
    mkdirSync(mnt);
    const child = spawn('rclone', ['mount', src, mnt, '--vfs-cache-mode', 'writes', '--cache-dir', join(base, 'rcache')], { stdio: 'ignore' });
    await waitMounted(mnt, child);
    return {
      dir: mnt,
      stop: async () => {
        unmount(mnt);
        child.kill('SIGTERM');
        // rclone may still be moving files out of its cache: the next target must not share the disk with it.
        await new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
      },
    };
  },
  aether: async (base) => {
    const mnt = join(base, 'mnt');
    mkdirSync(mnt);
    const child = spawn(process.execPath, [join(repo, 'packages/aether-remote/bin/aether.js'), 'mount', mnt, '--state-dir', join(base, 'state')], {
      stdio: ['ignore', 'ignore', 'inherit'],
      env: { ...process.env, AFS_AETHER_METRICS_LISTEN: 'off' },
    });
    await waitMounted(mnt, child);
    return {
      dir: mnt,
      stop: async () => {
        child.kill('SIGTERM');
        await new Promise((r) => child.once('exit', r));
        unmount(mnt);
      },
    };
  },
};

function runWorkload(op, dir, arg) {
  const r = spawnSync(process.execPath, [join(repo, 'bench/workload.mjs'), op, dir, arg ?? ''], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${op} on ${dir} failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

function figure(unit, { seconds, units }) {
  return unit === 's' ? seconds : units / seconds;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main() {
  ensureTools();
  const work = mkdtempSync(join(tmpdir(), 'aether-bench-'));
  const tgz = tarball(work);
  const results = Object.fromEntries(Object.keys(TARGETS).map((name) => [name, Object.fromEntries(WORKLOADS.map(([op]) => [op, []]))]));
  // Round by round, every target in turn: this VM's speed drifts by tens of percent over a minute,
  // and a drift must not land on one target only.
  for (let round = 0; round < rounds; round++) {
    for (const name of Object.keys(TARGETS)) {
      // Each target starts with the disk quiet: what the last one left dirty in the page cache is written first.
      spawnSync('sync');
      const base = join(work, `${name}-${round}`);
      mkdirSync(join(base, 'data'), { recursive: true });
      const t = await TARGETS[name](base);
      try {
        for (const [op, , unit] of WORKLOADS) results[name][op].push(figure(unit, runWorkload(op, t.dir, tgz)));
      } finally {
        await t.stop();
        rmSync(base, { recursive: true, force: true });
      }
    }
    process.stderr.write(`done: round ${round + 1} of ${rounds}\n`);
  }
  const names = Object.keys(TARGETS);
  const pad = (s, n) => String(s).padEnd(n);
  console.log(`medians of ${rounds} rounds; s = seconds (lower is better), others higher is better`);
  console.log([pad('workload', 26), pad('unit', 8), ...names.map((n) => pad(n, 10)), pad('aether/plain', 13), pad('aether/bindfs', 14), 'aether/rclone'].join(''));
  for (const [op, label, unit] of WORKLOADS) {
    const m = Object.fromEntries(names.map((n) => [n, median(results[n][op])]));
    const ratio = (peer) => (unit === 's' ? m[peer] / m.aether : m.aether / m[peer]).toFixed(2) + 'x';
    console.log([pad(label, 26), pad(unit, 8), ...names.map((n) => pad(m[n].toFixed(unit === 's' ? 3 : 0), 10)), pad(ratio('plain'), 13), pad(ratio('bindfs'), 14), ratio('rclone')].join(''));
  }
  console.log('\nevery round (in run order)');
  for (const [op, label, unit] of WORKLOADS) {
    const cell = (n) => results[n][op].map((v) => v.toFixed(unit === 's' ? 3 : 0)).join('/');
    console.log([pad(label, 26), pad(unit, 8), ...names.map((n) => pad(cell(n), Math.max(22, cell(n).length + 2)))].join(''));
  }
  rmSync(work, { recursive: true, force: true });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
