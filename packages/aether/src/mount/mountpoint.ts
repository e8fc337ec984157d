import { execFile, spawn } from 'node:child_process';
import { accessSync, constants as fsConstants, readFileSync } from 'node:fs';
import { lstat, mkdir, readFile, readdir, realpath, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { AetherError } from '../errors.js';

/**
 * What a mount point looks like before mounting.
 * - `stale`: a FUSE mount whose server died; every access fails with ENOTCONN until it is unmounted.
 * - `mounted`: something is mounted there and answers (or hangs past the stat timeout).
 */
export type MountpointState = 'missing' | 'not-directory' | 'empty' | 'not-empty' | 'mounted' | 'stale';

export interface MountpointCheckOptions {
  /** A live but hung FUSE server never answers stat; past this the mount point counts as busy. */
  statTimeoutMs?: number;
  /** Create a missing mount point (and its parents) instead of refusing it. */
  create?: boolean;
}

const STAT_TIMEOUT_MS_DEFAULT = 2000;
const FUSERMOUNT_TIMEOUT_MS = 10_000;
/** fusermount3 comes with Debian's fuse3; `fusermount` is libfuse 2's name (a symlink to it there). */
const FUSERMOUNT_COMMANDS = ['fusermount3', 'fusermount'] as const;
/** errno names a dead FUSE connection answers with. */
const DEAD_CONNECTION_CODES = new Set(['ENOTCONN', 'ECONNABORTED']);

function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** /proc/self/mountinfo escapes space, tab, newline and backslash in paths as octal. */
function unescapeMountPath(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** The canonical path of `dir` without touching `dir` itself (on a stale mount that fails). */
async function canonical(dir: string): Promise<string> {
  const abs = resolve(dir);
  try {
    return join(await realpath(dirname(abs)), basename(abs));
  } catch {
    return abs;
  }
}

/** True when `dir` is the mount point of some mount in this process's mount namespace. */
export async function isMountpoint(dir: string): Promise<boolean> {
  const target = await canonical(dir);
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  return info.split('\n').some((line) => {
    const field = line.split(' ')[4];
    return field !== undefined && unescapeMountPath(field) === target;
  });
}

/** The device (`major:minor`) of the mount at `dir`, the last one stacked there; null when none is. */
export async function mountDevice(dir: string): Promise<string | null> {
  const target = await canonical(dir);
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  let dev: string | null = null;
  for (const line of info.split('\n')) {
    const fields = line.split(' ');
    if (fields[4] !== undefined && unescapeMountPath(fields[4]) === target) dev = fields[2] ?? null;
  }
  return dev;
}

/**
 * Sets the kernel readahead of the mount at `dir` through its backing device in sysfs (root
 * only). Call it from the serving process only with the event loop free (the stat is a request).
 */
export async function setMountReadahead(dir: string, kib: number): Promise<void> {
  // The kernel lowers the readahead to what the INIT reply offers (128 KiB) when it processes
  // that reply, which may come after the mount answered: a value set before was undone (a
  // review reproduced it with the reply delayed 2 ms). Requests wait for INIT: one answered
  // means it is done.
  await stat(dir);
  const dev = await mountDevice(dir);
  if (dev === null) throw new Error(`${dir} is not mounted`);
  const file = `/sys/class/bdi/${dev}/read_ahead_kb`;
  await writeFile(file, `${kib}\n`);
  const now = (await readFile(file, 'utf8')).trim();
  if (now !== String(kib)) throw new Error(`${file} reads ${now} after writing ${kib}`);
}

/**
 * Refuses, in one line, a process that cannot open /dev/fuse for reading and writing: libfuse 2.9
 * then prints its own message and fails without falling back to fusermount.
 */
export function refuseWithoutFuseDevice(device = '/dev/fuse'): void {
  try {
    accessSync(device, fsConstants.R_OK | fsConstants.W_OK);
  } catch (err) {
    const code = codeOf(err) ?? String(err);
    throw new AetherError('MOUNT_FAILED', `cannot open ${device} (${code}): mounting needs read and write access to it (root, or a FUSE device this user may open)`, { cause: err, context: { device } });
  }
}

/**
 * `--allow-other` for a user other than root needs `user_allow_other` in /etc/fuse.conf, or
 * fusermount refuses the mount and libfuse says only "fuse failed" (a review).
 */
export function refuseAllowOtherWithoutConf(allowOther: boolean, conf = '/etc/fuse.conf', uid = process.getuid?.() ?? 0): void {
  if (!allowOther || uid === 0) return;
  let text = '';
  try {
    text = readFileSync(conf, 'utf8');
  } catch {
    // No file: nothing allows it.
  }
  if (!/^\s*user_allow_other\s*$/m.test(text)) {
    throw new AetherError('MOUNT_FAILED', `--allow-other needs the line user_allow_other in ${conf} for a user other than root (fusermount refuses it otherwise); add it as root, or mount without --allow-other`, { context: { conf } });
  }
}

export async function inspectMountpoint(dir: string, opts: MountpointCheckOptions = {}): Promise<MountpointState> {
  const statTimeoutMs = opts.statTimeoutMs ?? STAT_TIMEOUT_MS_DEFAULT;
  // A mount point is asked nothing from this process: a call into a hung FUSE server never
  // returns, and the thread-pool thread it holds kept a refused `aether mount` from exiting.
  if (await isMountpoint(dir)) return probeMount(dir, statTimeoutMs);
  let st;
  try {
    st = await lstat(dir);
  } catch (err) {
    if (codeOf(err) === 'ENOENT') return 'missing';
    throw err;
  }
  if (!st.isDirectory()) return 'not-directory';
  const names = await readdir(dir);
  return names.length === 0 ? 'empty' : 'not-empty';
}

/** How long a probe process may take to start (a loaded machine): its statfs is timed from then. */
const PROBE_START_MAX_MS = 60_000;

/**
 * Whether the mount at `dir` is alive, asked by a child process killed `timeoutMs` after it asks
 * (a hung server: counted as mounted). statfs always reaches the server: the kernel answers lstat
 * of a FUSE mount point from its attribute cache (60 s for an Aether mount) after the server died.
 * Only a dead connection's errno counts as stale; anything else leaves the mount alone.
 */
function probeMount(dir: string, timeoutMs: number): Promise<'mounted' | 'stale'> {
  const probe = "process.stdout.write('.'); require('node:fs').statfs(process.argv[1], (e) => process.stdout.write(e ? String(e.code) : 'ok'))";
  return new Promise((res) => {
    const child = spawn(process.execPath, ['-e', probe, '--', dir], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    const finish = (state: 'mounted' | 'stale'): void => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      res(state);
    };
    // Starting node took 3-5 s on this VM with 40 busy processes: the timeout counts from the statfs.
    let timer = setTimeout(() => finish('mounted'), PROBE_START_MAX_MS);
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      if (out === '') {
        clearTimeout(timer);
        timer = setTimeout(() => finish('mounted'), timeoutMs);
      }
      out += d;
    });
    child.once('error', () => finish('mounted'));
    child.once('close', () => finish(DEAD_CONNECTION_CODES.has(out.slice(1)) ? 'stale' : 'mounted'));
  });
}

function run(cmd: string, args: string[]): Promise<{ ok: boolean; detail: string }> {
  return new Promise((res) => {
    execFile(cmd, args, { timeout: FUSERMOUNT_TIMEOUT_MS }, (err, _stdout, stderr) => {
      res({ ok: err === null, detail: err === null ? '' : `${cmd}: ${stderr.trim() || err.message}` });
    });
  });
}

/**
 * Lazily unmounts `dir` when, and only when, it is a stale FUSE mount; never touches a live one.
 * Returns whether it cleaned one. Throws MOUNT_STALE when the stale mount stays.
 */
export async function cleanStaleMount(dir: string, opts: MountpointCheckOptions = {}): Promise<boolean> {
  if ((await inspectMountpoint(dir, opts)) !== 'stale') return false;
  const details: string[] = [];
  for (const cmd of FUSERMOUNT_COMMANDS) {
    const r = await run(cmd, ['-u', '-z', resolve(dir)]);
    if (r.ok && (await inspectMountpoint(dir, opts)) !== 'stale') return true;
    details.push(r.ok ? `${cmd}: succeeded but the mount is still stale` : r.detail);
  }
  throw new AetherError('MOUNT_STALE', `stale FUSE mount at ${dir} could not be unmounted (${details.join('; ')})`, { context: { mountpoint: dir, details } });
}

/**
 * Makes sure `dir` can take a new mount: cleans a stale FUSE mount left by a dead process, and
 * refuses, with a typed error, a mount point that is missing, not a directory, not empty, or busy.
 */
export async function prepareMountpoint(dir: string, opts: MountpointCheckOptions = {}): Promise<{ staleCleaned: boolean }> {
  const staleCleaned = await cleanStaleMount(dir, opts);
  const state = await inspectMountpoint(dir, opts);
  if (state === 'missing' && opts.create === true) {
    await mkdir(dir, { recursive: true });
    return { staleCleaned };
  }
  const refused = refusal(dir, state);
  if (refused) throw refused;
  return { staleCleaned };
}

/**
 * The same refusals, checked before anything is created or listened on (a state directory, the
 * metrics port), so that a wrong mount point is the error the user sees. A stale mount passes:
 * it is cleaned when mounting.
 */
export async function refuseUnusableMountpoint(dir: string, opts: MountpointCheckOptions = {}): Promise<void> {
  const state = await inspectMountpoint(dir, opts);
  const refused = state === 'stale' || (state === 'missing' && opts.create === true) ? undefined : refusal(dir, state);
  if (refused) throw refused;
}

function refusal(dir: string, state: MountpointState): AetherError | undefined {
  const context = { mountpoint: dir, state };
  switch (state) {
    case 'empty':
      return undefined;
    case 'missing':
      return new AetherError('MOUNT_MISSING', `mount point ${dir} does not exist`, { errno: 'ENOENT', context });
    case 'not-directory':
      return new AetherError('MOUNT_NOT_DIRECTORY', `mount point ${dir} is not a directory`, { errno: 'ENOTDIR', context });
    case 'not-empty':
      return new AetherError('MOUNT_NOT_EMPTY', `mount point ${dir} is not empty; mount on an empty directory`, { errno: 'ENOTEMPTY', context });
    case 'mounted':
    case 'stale':
      return new AetherError('MOUNT_BUSY', `mount point ${dir} is already mounted; unmount it first`, { errno: 'EBUSY', context });
  }
}
