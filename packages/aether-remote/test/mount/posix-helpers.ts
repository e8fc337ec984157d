/**
 * Helpers for the POSIX and errno tests: errno capture, programs run as another user, Python for
 * what Node has no API for (renameat2, xattrs, mmap), and the mount's own counters.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, lstatSync, mkdirSync, readSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { cleanup, stopAll, type MountProcess } from './harness.js';

export const NOBODY = 65534;
/** Drops to uid/gid 65534 with no supplementary groups. */
export const AS_NOBODY = ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups'];

/** The errno name `fn` fails with, or 'ok'. */
export function errnoOf(fn: () => unknown): string {
  try {
    fn();
    return 'ok';
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (typeof code !== 'string') throw err;
    return code;
  }
}

/** For `after`: stops every mount, then removes the temp folder of `m` (mount point and state). */
export async function stopAndClean(m: MountProcess | undefined): Promise<void> {
  await stopAll();
  if (m) cleanup(dirname(m.mnt));
}

/** Makes a new directory in the mount for each call, so tests never see each other's names. */
export function freshDirs(mount: () => MountProcess, prefix: string): () => string {
  let n = 0;
  return () => {
    const d = join(mount().mnt, `${prefix}${++n}`);
    mkdirSync(d);
    return d;
  };
}

/** Up to `length` bytes at `position` (pread). */
export function readAt(fd: number, position: number, length: number): Buffer {
  const buf = Buffer.alloc(length);
  return buf.subarray(0, readSync(fd, buf, 0, length, position));
}

/** uid and gid of `path` (not following a symlink). */
export function owner(path: string): [number, number] {
  const s = lstatSync(path);
  return [s.uid, s.gid];
}

/** The temp folder holding the mount point is 0700: other users need to pass through it. */
export function openToOthers(m: MountProcess): void {
  chmodSync(dirname(m.mnt), 0o755);
}

/**
 * Runs `script` (a function body using `fs`, `path`, `dir`, `errnoOf`) with Node in another
 * process, as nobody unless `asRoot`; returns what the body returns (JSON).
 */
export function nodeAs(script: string, dir: string, asRoot = false): unknown {
  const program = `
    const fs = require('node:fs'); const path = require('node:path'); const dir = ${JSON.stringify(dir)};
    const errnoOf = (fn) => { try { fn(); return 'ok'; } catch (e) { if (typeof e.code !== 'string') throw e; return e.code; } };
    const out = (() => { ${script} })();
    process.stdout.write(JSON.stringify(out === undefined ? null : out));`;
  const argv = [...(asRoot ? [] : AS_NOBODY), process.execPath, '-e', program];
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', cwd: '/' });
  assert.equal(r.status, 0, `node as ${asRoot ? 'root' : 'nobody'} failed:\n${r.stderr}`);
  return JSON.parse(r.stdout) as unknown;
}

/** Runs a Python 3 program; `print` a JSON value last. */
export function py(program: string, cwd: string): unknown {
  const out = execFileSync('python3', ['-c', program], { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return JSON.parse(out.trim().split('\n').pop() ?? 'null') as unknown;
}

/** Python that maps an OSError to its errno name: `err(lambda: ...)`. */
export const PY_ERR = `
import ctypes, errno, json, os
def err(fn):
    try:
        fn()
        return 'ok'
    except OSError as e:
        return errno.errorcode[e.errno]
`;

/** Runs a shell command line; returns stdout. */
export function sh(cmd: string, cwd: string): string {
  return execFileSync('bash', ['-c', cmd], { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

const metricsAddresses = new WeakMap<MountProcess, string>();

/** The mount's metrics, as `name{labels}` → value. */
export async function metrics(m: MountProcess): Promise<Map<string, number>> {
  let address = metricsAddresses.get(m);
  if (address === undefined) {
    address = (JSON.parse(m.ctl(['status', '--json']).out) as { metrics_address: string }).metrics_address;
    metricsAddresses.set(m, address);
  }
  const text = await (await fetch(`http://${address}/metrics`)).text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const match = /^([a-z_]+(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (match) out.set(match[1]!, Number(match[2]));
  }
  return out;
}

/** A FUSE operation count (aether_fuse_ops_total) by op and result. */
export async function opCount(m: MountProcess, op: string, result = 'ok'): Promise<number> {
  return (await metrics(m)).get(`aether_fuse_ops_total{op="${op}",result="${result}"}`) ?? 0;
}

/** Polls `check` until it returns true or `timeoutMs` passes; returns the last result. */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Open handles the mount holds (STATUS). */
export function openHandles(m: MountProcess): number {
  return (JSON.parse(m.ctl(['status', '--json']).out) as { open_handles: number }).open_handles;
}
