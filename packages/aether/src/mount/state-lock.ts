import { closeSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { AetherError } from '../errors.js';

/** The lock file in a state directory: the pid of the mount that owns the directory. */
export const STATE_LOCK_NAME = 'lock';

/** True while `pid` runs. A process killed but not yet reaped by its parent (a zombie) does not. */
export function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    // /proc/PID/stat: "pid (comm) S ...": the state follows the last ')' (comm may hold one).
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;
  }
}

/** Creates the state directory if needed; a path that is not a directory, or cannot be made, is refused in one line. */
export function ensureStateDir(dir: string, what = 'state directory'): void {
  try {
    mkdirSync(dir, { recursive: true });
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
}

/**
 * One mount per state directory, for the mount's whole life: `<state_dir>/lock`, created with
 * O_EXCL, holds the owner's pid. A lock whose process is gone (a crash) is taken over. The control
 * socket alone did not ensure this: its file can be removed while the mount runs, and a second
 * mount then shared the journal and the store with the first (and lost data).
 */
export class StateLock {
  private constructor(readonly path: string) {}

  static acquire(dir: string): StateLock {
    const path = join(dir, STATE_LOCK_NAME);
    for (let attempt = 0; ; attempt++) {
      try {
        const fd = openSync(path, 'wx', 0o600);
        try {
          writeSync(fd, `${process.pid}\n`);
        } finally {
          closeSync(fd);
        }
        return new StateLock(path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 2) throw err;
      }
      const pid = StateLock.ownerOf(path);
      if (pid !== null && pid !== process.pid && running(pid)) {
        throw new AetherError('STATE_DIR_BUSY', `state directory ${dir} is in use by another mount (process ${pid}); stop it first`, { context: { dir, pid } });
      }
      // Left by a mount that is gone: take it over.
      rmSync(path, { force: true });
    }
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

  /** Gives the directory up (the lock file goes if it is still this process's). */
  release(): void {
    if (StateLock.ownerOf(this.path) === process.pid) rmSync(this.path, { force: true });
  }
}
