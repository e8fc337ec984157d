import { accessSync, constants as fsConstants, existsSync, mkdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { AetherError } from '../errors.js';

/** The lock file in a state directory: the pid of the mount that owns the directory. */
export const STATE_LOCK_NAME = 'lock';

/**
 * `mkdir -p`, one level at a time from the deepest directory that exists: Node's recursive mkdir
 * spins for good at 100% CPU where the parent answers ENOENT to a mkdir although it exists (under
 * /proc, found by a review), and it reports a read-only file system as ENOENT.
 */
function mkdirs(dir: string): void {
  const missing: string[] = [];
  let at = resolve(dir);
  for (;;) {
    let isDir: boolean;
    try {
      isDir = statSync(at).isDirectory();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || dirname(at) === at) throw err;
      missing.unshift(basename(at));
      at = dirname(at);
      continue;
    }
    if (!isDir) throw Object.assign(new Error(`${at} is not a directory`), { code: 'ENOTDIR' });
    break;
  }
  for (const name of missing) {
    at = join(at, name);
    try {
      mkdirSync(at);
    } catch (err) {
      // Made meanwhile by another process (two mounts, or a hub, starting at once).
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || !statSync(at).isDirectory()) throw err;
    }
  }
}

/** The real path of `path`, whose tail may not exist yet: its deepest existing ancestor's, and the rest. */
function realish(path: string): string {
  const abs = resolve(path);
  try {
    return realpathSync(abs);
  } catch {
    return dirname(abs) === abs ? abs : join(realish(dirname(abs)), basename(abs));
  }
}

/**
 * Refuses, in one line, a state directory at or under the mount point: the mount would hide it,
 * and make the mount point non-empty. The mount point itself is never looked at (its parent is),
 * nor a path under it: a hung FUSE server there would block this call for good.
 */
export function refuseStateDirUnder(dir: string, mountpoint: string): void {
  const mp = join(realish(dirname(resolve(mountpoint))), basename(resolve(mountpoint)));
  const under = (path: string): boolean => {
    const rel = relative(mp, path);
    return rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel);
  };
  if (under(resolve(dir)) || under(realish(dir))) {
    throw new AetherError('STATE_DIR_INVALID', `state directory ${dir} is inside the mount point ${mountpoint}: put it elsewhere (--state-dir or state_dir)`, { context: { dir, mountpoint } });
  }
}

/** sun_path holds 108 bytes with its closing NUL: a longer socket path cannot be bound. */
const SOCKET_PATH_MAX = 107;

/**
 * A control socket path too long for a Unix socket is refused in one line before anything is
 * made: Node cut it short, bound a stray socket under the truncated name beside the state
 * directory (which made the next try fail with EADDRINUSE), then failed on chmod with ENOENT.
 */
export function refuseLongSocketPath(path: string): void {
  const bytes = Buffer.byteLength(path);
  if (bytes > SOCKET_PATH_MAX) {
    throw new AetherError('STATE_DIR_INVALID', `the control socket ${path} would be ${bytes} bytes long, over the ${SOCKET_PATH_MAX} a Unix socket path may have: use a shorter state directory path (--state-dir or state_dir)`, { context: { path } });
  }
}

/**
 * Creates the state directory (or one inside it) if needed; a path that is not a directory, cannot
 * be made, or is not writable (a read-only file system, another user's) is refused in one line.
 */
export function ensureStateDir(dir: string, what = 'state directory'): void {
  try {
    mkdirs(dir);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    let isDir = false;
    try {
      isDir = statSync(dir).isDirectory();
    } catch {
      // Missing, or a parent is not a directory: the mkdir error says which.
    }
    if (e.code === 'EEXIST' || e.code === 'ENOTDIR' || !isDir) {
      const why = e.code === 'EEXIST' || e.code === 'ENOTDIR' ? 'is not a directory (or a parent of it is not)' : `cannot be created (${e.code ?? e.message})`;
      throw new AetherError('STATE_DIR_INVALID', `${what} ${dir} ${why}`, { cause: err, context: { dir } });
    }
  }
  // Else the first write failed deep inside: "attempt to write a readonly database", naming nothing (a review).
  if (!writable(dir)) throw new AetherError('STATE_DIR_INVALID', `${what} ${dir} is not writable by this user (a read-only file system, or another user's)`, { context: { dir } });
}

export function writable(path: string): boolean {
  try {
    accessSync(path, fsConstants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * One mount per state directory (and one hub per data directory), for the owner's whole life.
 * The lock is the kernel's: an exclusive SQLite transaction held open on `<dir>/lock.sqlite`
 * (fcntl locks, which go with the process that holds them, also after kill -9, and which a second
 * connection in the same process is refused too). `<dir>/lock` holds the owner's pid, for the
 * refusal and for people. The control socket alone did not ensure this: its file can be removed
 * while the mount runs, and a second mount then shared the journal and the store with the first
 * (and lost data). Until 2026-12-07 the pid file was the lock, made with O_EXCL and taken over
 * when its process was gone: two processes taking over one left by a crash at the same moment
 * both got it (a review: 17 of 40 races), and a second opener in the same process passed.
 */
export class StateLock {
  private constructor(
    readonly path: string,
    private readonly held: Database.Database,
  ) {}

  /** `what`: the directory and its owner as the refusal names them (a hub's data directory takes one too). */
  static acquire(dir: string, what = { dir: 'state directory', owner: 'mount' }): StateLock {
    const path = join(dir, STATE_LOCK_NAME);
    const file = join(dir, `${STATE_LOCK_NAME}.sqlite`);
    const invalid = (why: string, cause?: unknown): AetherError => new AetherError('STATE_DIR_INVALID', `${what.dir} ${dir}: cannot take its lock: ${why}`, { cause, context: { dir } });
    let held: Database.Database | undefined;
    try {
      // Two takers at once can each hold SQLite's shared lock and keep the other from the
      // exclusive one: a short busy timeout lets one of them through (a lock held by a running
      // owner is refused after it).
      // SQLite opens a file it may not write read-only, where BEGIN EXCLUSIVE locks nothing (or
      // not at all: "unable to open database file").
      if (existsSync(file) && !writable(file)) throw invalid(`${file} is not writable by this user`);
      held = new Database(file, { timeout: 500 });
      if (!writable(file)) throw invalid(`${file} is not writable by this user`);
      held.exec('BEGIN EXCLUSIVE');
    } catch (err) {
      held?.close();
      if (err instanceof AetherError) throw err;
      if ((err as { code?: string }).code !== 'SQLITE_BUSY') throw invalid(`${file}: ${(err as Error).message}`, err);
      const pid = StateLock.ownerOf(path);
      throw new AetherError('STATE_DIR_BUSY', `${what.dir} ${dir} is in use by another ${what.owner}${pid !== null ? ` (process ${pid})` : ''}; stop it first`, { context: { dir, pid } });
    }
    try {
      writeFileSync(path, `${process.pid}\n`);
    } catch (err) {
      held.close();
      throw invalid(`${path}: ${(err as Error).message}`, err);
    }
    return new StateLock(path, held);
  }

  /** The pid in a lock file, or null when there is none or it is not a pid. */
  static ownerOf(path: string): number | null {
    try {
      const pid = Number(readFileSync(path, 'utf8').trim());
      return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
    } catch {
      return null;
    }
  }

  /** Gives the directory up: the pid file goes, then the lock. */
  release(): void {
    if (!this.held.open) return;
    rmSync(this.path, { force: true });
    this.held.close();
  }
}
