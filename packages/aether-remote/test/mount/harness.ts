/**
 * Runs `aether mount` in a child process for tests (the test process must never serve its own
 * mount) and cleans up after it, whatever happens.
 */
import { spawn, spawnSync, type ChildProcess, type ChildProcessByStdio } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { after } from 'node:test';
import { fileURLToPath } from 'node:url';

export const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..', '..');
export const bin = join(repo, 'packages', 'aether-remote', 'bin', 'aether.js');

export interface MountProcess {
  mnt: string;
  stateDir: string;
  proc: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** SIGTERM and wait for a clean exit; resolves with the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL, then detach the dead FUSE mount (unless `keepStaleMount`: then the next mount must clean it). */
  kill9(opts?: { keepStaleMount?: boolean }): Promise<void>;
  /** `aether ARGS --state-dir <stateDir>` in another process. */
  ctl(args: string[], env?: Record<string, string>): { code: number | null; out: string; err: string };
  /** The same without blocking this process (which may be serving a proxy the mount talks through). */
  ctlAsync(args: string[], env?: Record<string, string>): Promise<{ code: number | null; out: string; err: string }>;
}

export interface StartOptions {
  mnt?: string;
  stateDir?: string;
  env?: Record<string, string>;
  args?: string[];
}

export function tempDir(prefix = 'aether-mnt-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function unmountLazy(mnt: string): void {
  spawnSync('fusermount3', ['-u', '-z', mnt], { stdio: 'ignore' });
  spawnSync('fusermount', ['-u', '-z', mnt], { stdio: 'ignore' });
}

const live = new Set<MountProcess>();
/** Mount points left stale on purpose: detached at exit in case a test failed before cleaning them. */
const stale = new Set<string>();
process.on('exit', () => {
  for (const m of live) {
    m.proc.kill('SIGKILL');
    unmountLazy(m.mnt);
  }
  for (const mnt of stale) unmountLazy(mnt);
});

/** `aether mount` in a child process, its output collected. */
interface MountChild {
  proc: ChildProcessByStdio<null, Readable, Readable>;
  stdout: () => string;
  stderr: () => string;
  /** The exit code, on 'close' rather than 'exit': only then has all of its output been read. */
  closed: Promise<number | null>;
}

function spawnMount(mnt: string, stateDir: string, opts: StartOptions): MountChild {
  const proc = spawn(process.execPath, [bin, 'mount', mnt, '--state-dir', stateDir, ...(opts.args ?? [])], {
    env: { ...process.env, AFS_AETHER_METRICS_LISTEN: '127.0.0.1:0', AFS_AETHER_CONFIG: '', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  proc.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const closed = new Promise<number | null>((resolve) => proc.once('close', (code) => resolve(code)));
  return { proc, stdout: () => out, stderr: () => err, closed };
}

const ctlEnv = (env: Record<string, string>): NodeJS.ProcessEnv => ({ ...process.env, AFS_AETHER_CONFIG: '', ...env });

/** Starts a mount and resolves once it is serving (its "mounted" line); rejects if it exits first. */
export async function startMount(opts: StartOptions = {}): Promise<MountProcess> {
  const base = opts.mnt && opts.stateDir ? '' : tempDir();
  const mnt = opts.mnt ?? join(base, 'mnt');
  const stateDir = opts.stateDir ?? join(base, 'state');
  try {
    mkdirSync(mnt, { recursive: true });
  } catch (err) {
    // A stale mount left by kill9({ keepStaleMount: true }) answers ENOTCONN: the mount cleans it.
    if ((err as NodeJS.ErrnoException).code !== 'ENOTCONN') throw err;
  }
  const child = spawnMount(mnt, stateDir, opts);
  const { proc, closed: exited } = child;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`mount did not come up in 30 s:\n${child.stderr()}`)), 30_000);
    const check = (): void => {
      if (child.stdout().includes('aether: mounted')) {
        clearTimeout(timer);
        resolve();
      }
    };
    proc.stdout.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`mount exited with ${code} before mounting:\n${child.stderr()}`));
    });
  });
  const m: MountProcess = {
    mnt,
    stateDir,
    proc,
    stdout: child.stdout,
    stderr: child.stderr,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      const code = await exited;
      live.delete(m);
      unmountLazy(mnt);
      return code;
    },
    async kill9({ keepStaleMount = false } = {}) {
      proc.kill('SIGKILL');
      await exited;
      live.delete(m);
      if (keepStaleMount) stale.add(mnt);
      else unmountLazy(mnt);
    },
    ctl(args, env = {}) {
      const r = spawnSync(process.execPath, [bin, ...args, '--state-dir', stateDir], { encoding: 'utf8', env: ctlEnv(env) });
      return { code: r.status, out: r.stdout, err: r.stderr };
    },
    ctlAsync(args, env = {}) {
      const p = spawn(process.execPath, [bin, ...args, '--state-dir', stateDir], { env: ctlEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      p.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
      p.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
      return new Promise((resolve) => p.once('close', (code) => resolve({ code, out, err })));
    },
  };
  live.add(m);
  return m;
}

/** The mount's `STATUS` reply (the fields the tests read). */
/** The value of the first line of the mount's /metrics matching `line` (0 when none does). */
export async function metric(m: MountProcess, line: RegExp): Promise<number> {
  const address = (JSON.parse(m.ctl(['status', '--json']).out) as { metrics_address: string }).metrics_address;
  const text = await (await fetch(`http://${address}/metrics`)).text();
  const found = text.split('\n').find((l) => line.test(l));
  return found ? Number(found.split(' ').pop()) : 0;
}

export interface MountStatus {
  state: string;
  sync: { state: string; backlog_entries: number; last_error: string | null };
  journal: { pending_bytes: number; pending_entries: number; committed_seq: number; last_seq: number; failed: string | null };
  open_handles: number;
  pid: number;
}

/** Every metric name the shipped Grafana dashboard queries, the bridge's apart. */
export function dashboardMetricNames(): { local: string[]; bridge: string[] } {
  const dash = JSON.parse(readFileSync(join(repo, 'docs', 'grafana', 'aether-mount.json'), 'utf8')) as { panels: { targets?: { expr: string }[] }[] };
  const names = new Set(dash.panels.flatMap((p) => (p.targets ?? []).flatMap((t) => t.expr.match(/aether_[a-z0-9_]+/g) ?? [])));
  const all = [...names].sort();
  return { local: all.filter((n) => !n.startsWith('aether_bridge_')), bridge: all.filter((n) => n.startsWith('aether_bridge_')) };
}

export function status(m: MountProcess): MountStatus {
  const r = m.ctl(['status', '--json']);
  if (r.code !== 0) throw new Error(`aether status failed (${r.code}): ${r.err}`);
  return JSON.parse(r.out) as MountStatus;
}

/** Waits until every journal entry appended so far is drained into the store. */
export async function waitDrained(m: MountProcess, timeoutMs = 20_000): Promise<MountStatus> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = status(m);
    if (s.journal.committed_seq === s.journal.last_seq) return s;
    if (Date.now() > deadline) throw new Error(`the journal did not drain in ${timeoutMs} ms: ${JSON.stringify(s)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** SIGTERM, and fail unless the mount unmounted cleanly (exit code 0), with its stderr in the message. */
export async function stopCleanly(m: MountProcess): Promise<void> {
  const code = await m.stop();
  if (code !== 0) throw new Error(`aether mount exited with ${code} (signal ${m.proc.signalCode}) on SIGTERM:\n${m.stderr()}`);
}

/** Stops every mount a test left running and detaches stale ones; use in `after` hooks. */
export async function stopAll(): Promise<void> {
  for (const m of [...live]) await m.stop().catch(() => m.kill9());
  for (const mnt of stale) unmountLazy(mnt);
  stale.clear();
}

export interface FailedMount {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `aether mount` where it must refuse to start and resolves with how it exited. Should it
 * mount after all, it is stopped and the promise rejects.
 */
export async function mountMustFail(opts: StartOptions & { mnt: string; stateDir: string }, timeoutMs = 30_000): Promise<FailedMount> {
  const { proc, stdout, stderr, closed } = spawnMount(opts.mnt, opts.stateDir, opts);
  const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
  proc.stdout.on('data', () => {
    if (stdout().includes('aether: mounted')) proc.kill('SIGTERM');
  });
  const code = await closed;
  clearTimeout(timer);
  if (stdout().includes('aether: mounted')) throw new Error(`aether mount ${opts.mnt} should have failed but mounted:\n${stderr()}`);
  return { code, stdout: stdout(), stderr: stderr() };
}

export function cleanup(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** Starts `aether mount` and SIGKILLs it `afterMs` later, whether it has mounted yet or not. */
export async function killDuringStart(opts: StartOptions & { mnt: string; stateDir: string }, afterMs: number): Promise<{ mounted: boolean; stderr: string }> {
  const { proc, stdout, stderr, closed } = spawnMount(opts.mnt, opts.stateDir, opts);
  await new Promise((r) => setTimeout(r, afterMs));
  proc.kill('SIGKILL');
  await closed;
  unmountLazy(opts.mnt);
  return { mounted: stdout().includes('aether: mounted'), stderr: stderr() };
}

/**
 * For a describe block: `dir(prefix)` makes a temporary directory; after the block every mount
 * is stopped and those directories are removed.
 */
export function mountSuite(): { dir(prefix: string): string } {
  const dirs: string[] = [];
  after(async () => {
    await stopAll();
    for (const d of dirs) cleanup(d);
  });
  return {
    dir(prefix) {
      const d = tempDir(prefix);
      dirs.push(d);
      return d;
    },
  };
}

/**
 * Runs `fn` while no other test process runs one: for tests that count the requests the kernel's
 * caches spare a mount, and for the one that empties those caches machine-wide
 * (`/proc/sys/vm/drop_caches`), which test files running at the same time would otherwise see.
 * The lock is a directory in the test run's TMPDIR holding its owner's pid; an owner that died
 * holding it loses it.
 */
export async function withKernelCaches<T>(fn: () => Promise<T>): Promise<T> {
  const lock = join(tmpdir(), 'aether-kernel-caches.lock');
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let owner = 0;
    try {
      owner = Number(readFileSync(join(lock, 'pid'), 'utf8'));
    } catch {
      // Not written yet: the owner is between its mkdir and its write.
    }
    if (owner > 0 && !alive(owner)) rmSync(lock, { recursive: true, force: true });
    else await new Promise((r) => setTimeout(r, 50));
  }
  writeFileSync(join(lock, 'pid'), String(process.pid));
  try {
    return await fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The kill tests' seed: AETHER_KILL_SEED replays a run, else one from the clock. */
export function killSeed(): number {
  return Number(process.env.AETHER_KILL_SEED ?? Date.now() % 2 ** 31);
}
