/**
 * Bridge-mode test helpers: a hub child process that can be killed and restarted on the same
 * address and data, mounts that sync through it (or through a proxy in front of it), polling
 * assertions, and tree snapshots of a mount point.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { closeSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { spawnHub, TOKEN, type HubProcess } from '../hub/helpers.js';
import { startMount, tempDir, type MountProcess } from './harness.js';

export const hubArgs = (listen: string, data: string): string[] => ['--listen', listen, '--data', data, '--token', TOKEN, '--metrics-listen', '127.0.0.1:0'];

/** Fast reconnects, so a restarted hub is found quickly. */
export const FAST_ENV = { AFS_AETHER_RECONNECT_START_MS: '50', AFS_AETHER_RECONNECT_MAX_MS: '300', AFS_AETHER_RECONNECT_JITTER_PERCENT: '0' };

/** A mount syncing through the hub at `url` (a hub's, or a proxy's in front of it). */
export function bridgeMount(url: string | HubProcess, env: Record<string, string> = {}, at: { mnt?: string; stateDir?: string } = {}): Promise<MountProcess> {
  return startMount({ ...at, args: ['--bridge', typeof url === 'string' ? url : url.url], env: { ...FAST_ENV, AFS_AETHER_BRIDGE_TOKEN: TOKEN, ...env } });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Retries `check` until it passes or `ms` elapse; the last failure is the error. */
export async function within(ms: number, what: string, check: () => void): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      check();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms: ${err instanceof Error ? err.message : String(err)}`);
      await sleep(25);
    }
  }
}

export function readOr(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** A hub child process that a test can kill -9 and restart on the same address and data. */
export interface HubControl {
  readonly hub: HubProcess;
  /** The hub's data directory (its SQLite store). */
  readonly data: string;
  kill9(): Promise<void>;
  restart(): Promise<void>;
}

/** Runs `fn` with a hub child process (`extraArgs`: more `aether hub` flags); stops it after. */
export async function withHub(fn: (h: HubControl) => Promise<void>, extraArgs: string[] = []): Promise<void> {
  const data = tempDir();
  let hub = await spawnHub([...hubArgs('127.0.0.1:0', data), ...extraArgs]);
  const listen = hub.url.replace('ws://', '');
  const control: HubControl = {
    get hub() {
      return hub;
    },
    data,
    kill9: () => hub.kill9(),
    restart: async () => {
      hub = await spawnHub([...hubArgs(listen, data), ...extraArgs]);
    },
  };
  try {
    await fn(control);
  } finally {
    await hub.stop();
  }
}

/** Every file and directory under `root`: relative path → kind, mode and (files) a content hash. */
export function tree(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string): void => {
    for (const name of readdirSync(join(root, rel))) {
      const p = rel ? `${rel}/${name}` : name;
      const st = lstatSync(join(root, p));
      if (st.isDirectory()) {
        out.set(p, `dir ${st.mode.toString(8)}`);
        walk(p);
      } else out.set(p, `file ${st.mode.toString(8)} ${createHash('sha256').update(readFileSync(join(root, p))).digest('hex').slice(0, 16)}`);
    }
  };
  walk('');
  return out;
}

/** `aether sync wait` against a mount: exits 0 once everything pending is committed at the hub. */
export function syncWait(m: MountProcess, timeoutS = 20): { code: number | null; out: string; err: string } {
  return m.ctl(['sync', 'wait', '--timeout', String(timeoutS)]);
}

/** Writes numbered files of varied sizes and modes into `dir`, remembering what it wrote. */
export function fileWriter(dir: string): { expected: Map<string, string>; writeSome(count: number): void } {
  const expected = new Map<string, string>();
  let n = 0;
  return {
    expected,
    writeSome(count: number): void {
      for (let i = 0; i < count; i++, n++) {
        const body = `file ${n} `.repeat(1 + ((n * 37) % 5000));
        writeFileSync(join(dir, `f${n}.txt`), body, { mode: n % 2 ? 0o600 : 0o644 });
        expected.set(`f${n}.txt`, body);
      }
    },
  };
}

/** `aether sync wait` that must succeed; asynchronous, so that a proxy in this process keeps serving. */
export async function mustSync(m: MountProcess, timeoutS = 20): Promise<void> {
  const w = await m.ctlAsync(['sync', 'wait', '--timeout', String(timeoutS)]);
  assert.equal(w.code, 0, `sync wait: ${w.err.split('\n').slice(-2).join('\n')}\nthe mount's log:\n${m.stderr().slice(-3000)}`);
}

/** The mount's bridge status (`aether status --json`, field `bridge`). */
export function bridgeStatus(m: MountProcess): Record<string, unknown> {
  const r = m.ctl(['status', '--json']);
  assert.equal(r.code, 0, r.err);
  return (JSON.parse(r.out) as { bridge: Record<string, unknown> }).bridge;
}

/** The text of a mount's /metrics endpoint. */
export async function mountMetrics(m: MountProcess): Promise<string> {
  const r = m.ctl(['status', '--json']);
  assert.equal(r.code, 0, r.err);
  return (await fetch(`http://${(JSON.parse(r.out) as { metrics_address: string }).metrics_address}/metrics`)).text();
}

/** Writes `text` into the file at `offset`, leaving the rest as it is. */
export function overwrite(path: string, offset: number, text: string): void {
  const fd = openSync(path, 'r+');
  try {
    writeSync(fd, text, offset);
  } finally {
    closeSync(fd);
  }
}

/** A mount's tree, files as "path=content". */
export const show = (m: MountProcess): string[] => [...tree(m.mnt)].map(([p, k]) => (k.startsWith('file') ? `${p}=${readFileSync(join(m.mnt, p), 'latin1')}` : p));

/** Both mounts show the same tree, made of one file holding `content`. */
export function sameTreeOfOneFile(a: MountProcess, b: MountProcess, content: string): void {
  const ta = tree(a.mnt);
  assert.deepEqual(tree(b.mnt), ta);
  assert.deepEqual([...ta.keys()].map((n) => readFileSync(join(a.mnt, n), 'latin1')), [content], [...ta.keys()].join(', '));
}

/** Two mounts of `hub` that both show the directory `d` A made. */
export async function twoMountsSharingDirD(hub: HubProcess, envB: Record<string, string> = {}): Promise<{ a: MountProcess; b: MountProcess }> {
  const a = await bridgeMount(hub);
  const b = await bridgeMount(hub, envB);
  mkdirSync(join(a.mnt, 'd'));
  assert.equal(syncWait(a).code, 0);
  await within(5000, 'B has d', () => assert.deepEqual(show(b), ['d']));
  return { a, b };
}

/**
 * B changes things with its drain paused; A's changes commit and reach B meanwhile; then B ships
 * (`meanwhile` runs just before B resumes).
 */
export async function bBehindA(a: MountProcess, b: MountProcess, onB: () => void, onA: () => void, meanwhile: () => void = () => undefined): Promise<void> {
  assert.equal(b.ctl(['sync', 'pause']).code, 0);
  onB();
  onA();
  assert.equal(syncWait(a).code, 0);
  await sleep(500);
  meanwhile();
  assert.equal(b.ctl(['sync', 'resume']).code, 0);
  assert.equal(syncWait(b).code, 0);
}
