// Bridge mode end to end: a real `aether hub` and two real bridge-mode mounts A and B (FUSE, child
// processes) on this machine. Prints:
// - propagation latency A → B for small files: write on A, stat/read loop on B (no inotify) until
//   the name shows with the right content; p50 and p99;
// - bulk upload: BULK_MIB of files copied onto A until `aether sync wait` returns, as a ratio to a
//   plain `cp` of the same files onto local disk in the same run (with and without a final `sync`);
// - catch-up: B stopped while A makes 10,000 changes; time from B's start to B showing all of them.
// Needs root and /dev/fuse. Run after `npm run build`:
// node bench/bridge.mjs [--latency-files N] [--bulk-mib N] [--changes N]. Not part of the tests.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { get } from 'node:http';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = join(repo, 'packages/aether-remote/bin/aether.js');
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const LATENCY_FILES = arg('latency-files', 300);
const BULK_MIB = arg('bulk-mib', 256);
const CHANGES = arg('changes', 10_000);
const TOKEN = 'bench-token';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const work = mkdtempSync(join(tmpdir(), 'aether-bridge-bench-'));

/** A child process whose stdout is collected; resolves once `ready` matches it. */
async function start(args, env, ready, what) {
  const child = spawn(process.execPath, args, { env: { ...process.env, AFS_AETHER_CONFIG: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d) => (err += d));
  const exited = new Promise((r) => child.once('exit', r));
  for (let i = 0; !ready.test(out); i++) {
    if (child.exitCode !== null || i > 1200) throw new Error(`${what} did not start:\n${err}`);
    await sleep(25);
  }
  return { child, out: () => out, err: () => err, exited };
}

function unmount(mnt) {
  spawnSync('fusermount3', ['-u', '-z', mnt]);
  spawnSync('fusermount', ['-u', '-z', mnt]);
}

async function startMount(name, url) {
  const mnt = join(work, name, 'mnt');
  const stateDir = join(work, name, 'state');
  mkdirSync(mnt, { recursive: true });
  const env = { AFS_AETHER_BRIDGE_TOKEN: TOKEN, AFS_AETHER_METRICS_LISTEN: 'off', AFS_AETHER_RECONNECT_START_MS: '100', AFS_AETHER_RECONNECT_MAX_MS: '1000' };
  // BENCH_PROF=a (or b, or hub): a CPU profile of that process into /tmp/aether-bridge-prof.
  const prof = process.env.BENCH_PROF === name ? ['--cpu-prof', '--cpu-prof-dir=/tmp/aether-bridge-prof'] : [];
  const p = await start([...prof, bin, 'mount', mnt, '--state-dir', stateDir, '--bridge', url], env, /aether: mounted/, `mount ${name}`);
  return {
    mnt,
    stateDir,
    async stop() {
      p.child.kill('SIGTERM');
      await p.exited;
      unmount(mnt);
    },
    syncWait() {
      const r = spawnSync(process.execPath, [bin, 'sync', 'wait', '--timeout', '600', '--state-dir', stateDir], { encoding: 'utf8', env: { ...process.env, AFS_AETHER_CONFIG: '' } });
      if (r.status !== 0) throw new Error(`sync wait on ${name}: ${r.stderr}`);
    },
  };
}

function readOr(path) {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

const pct = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))];
const timed = (fn) => {
  const t0 = performance.now();
  fn();
  return (performance.now() - t0) / 1000;
};

async function latency(a, b) {
  mkdirSync(join(a.mnt, 'lat'));
  a.syncWait();
  while (!existsSync(join(b.mnt, 'lat'))) await sleep(5);
  const ms = [];
  for (let i = 0; i < LATENCY_FILES; i++) {
    const body = `small file ${i} ${randomBytes(8).toString('hex')}\n`;
    const path = `lat/f${i}`;
    const t0 = performance.now();
    writeFileSync(join(a.mnt, path), body);
    while (readOr(join(b.mnt, path)) !== body) await sleep(1);
    ms.push(performance.now() - t0);
  }
  return { p50: pct(ms, 50), p99: pct(ms, 99), max: Math.max(...ms) };
}

function bulk(a) {
  // The same files for every copy: 1/4 of the bytes in 1 MiB files, the rest in 16 MiB ones.
  const src = join(work, 'bulk-src');
  mkdirSync(src);
  let left = BULK_MIB * 2 ** 20;
  for (let i = 0; left > 0; i++) {
    const size = Math.min(left, i % 4 === 0 ? 16 * 2 ** 20 : 2 ** 20);
    writeFileSync(join(src, `b${i}`), randomBytes(size));
    left -= size;
  }
  const cp = timed(() => spawnSync('cp', ['-r', src, join(work, 'bulk-local')]));
  rmSync(join(work, 'bulk-local'), { recursive: true });
  const cpSync = timed(() => {
    spawnSync('cp', ['-r', src, join(work, 'bulk-local')]);
    spawnSync('sync');
  });
  rmSync(join(work, 'bulk-local'), { recursive: true });
  let copied = 0;
  const aether = timed(() => {
    copied = timed(() => spawnSync('cp', ['-r', src, join(a.mnt, 'bulk')]));
    a.syncWait();
  });
  return { cp, cpSync, aether, copied };
}

async function catchUp(a, b, url) {
  await b.stop();
  // 10,000 changes on A while B is down: creates, then overwrites of the same files, in 10 directories.
  const dirs = 10;
  const files = CHANGES / 2 / dirs;
  for (let d = 0; d < dirs; d++) mkdirSync(join(a.mnt, `c${d}`));
  let made = dirs;
  for (let round = 0; made < CHANGES; round++) {
    for (let d = 0; d < dirs && made < CHANGES; d++) {
      for (let f = 0; f < files && made < CHANGES; f++, made++) writeFileSync(join(a.mnt, `c${d}`, `f${f}`), `round ${round} ${d}/${f}\n`);
    }
  }
  const last = readFileSync(join(a.mnt, `c${dirs - 1}`, `f${files - 1}`), 'utf8');
  a.syncWait();
  const t0 = performance.now();
  const b2 = await startMount('b', url);
  const mounted = (performance.now() - t0) / 1000;
  const all = () => {
    for (let d = 0; d < dirs; d++) if (readdirSync(join(b2.mnt, `c${d}`)).length !== files) return false;
    return readOr(join(b2.mnt, `c${dirs - 1}`, `f${files - 1}`)) === last;
  };
  for (;;) {
    try {
      if (all()) break;
    } catch {
      // A directory not there yet.
    }
    await sleep(20);
  }
  return { b: b2, mounted, total: (performance.now() - t0) / 1000, changes: made };
}

async function main() {
  const hubProf = process.env.BENCH_PROF === 'hub' ? ['--cpu-prof', '--cpu-prof-dir=/tmp/aether-bridge-prof'] : [];
  const hub = await start([...hubProf, bin, 'hub', '--listen', '127.0.0.1:0', '--data', join(work, 'hub'), '--token', TOKEN, '--metrics-listen', '127.0.0.1:0'], {}, /metrics: +\S+\n/, 'hub');
  const url = /hub listening on (\S+)/.exec(hub.out())[1];
  const metricsUrl = /metrics: +(\S+)/.exec(hub.out())[1];
  // A fresh connection per scrape: this process blocks in spawnSync for long, a kept-alive one goes stale.
  const scrape = (sample) =>
    new Promise((resolve, reject) => {
      get(`${metricsUrl}`, { agent: false }, (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (d) => (text += d));
        res.on('end', () => resolve(Number(text.split('\n').find((l) => l.startsWith(`${sample} `))?.split(' ')[1] ?? NaN)));
      }).on('error', reject);
    });
  const commits = async () => ({ n: await scrape('aether_hub_commits_total'), s: await scrape('aether_hub_commit_seconds_sum') });
  let a;
  let b;
  try {
    a = await startMount('a', url);
    b = await startMount('b', url);
    const lat = await latency(a, b);
    console.log(`propagation A → B, ${LATENCY_FILES} small files (write on A until B reads the content): p50 ${lat.p50.toFixed(1)} ms, p99 ${lat.p99.toFixed(1)} ms, max ${lat.max.toFixed(1)} ms`);
    const c0 = await commits();
    const bk = bulk(a);
    const c1 = await commits();
    const mibs = (s) => (BULK_MIB / s).toFixed(1);
    console.log(`bulk upload ${BULK_MIB} MiB: cp onto local disk ${bk.cp.toFixed(2)} s (${mibs(bk.cp)} MiB/s); cp + sync ${bk.cpSync.toFixed(2)} s (${mibs(bk.cpSync)} MiB/s)`);
    console.log(`  cp onto mount A + sync wait ${bk.aether.toFixed(2)} s (${mibs(bk.aether)} MiB/s; the cp returned after ${bk.copied.toFixed(2)} s): ${(bk.cp / bk.aether).toFixed(3)}x of cp, ${(bk.cpSync / bk.aether).toFixed(3)}x of cp + sync`);
    console.log(`  hub commits during the bulk upload: ${c1.n - c0.n}, ${(((c1.s - c0.s) / (c1.n - c0.n)) * 1000).toFixed(1)} ms each on average (${(BULK_MIB / (c1.n - c0.n)).toFixed(2)} MiB per batch)`);
    const cu = await catchUp(a, b, url);
    b = cu.b;
    console.log(`catch-up of B after ${cu.changes} changes on A while it was stopped: ${cu.total.toFixed(2)} s from start to showing all (mounted after ${cu.mounted.toFixed(2)} s)`);
  } finally {
    await b?.stop();
    await a?.stop();
    hub.child.kill('SIGTERM');
    await hub.exited;
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
