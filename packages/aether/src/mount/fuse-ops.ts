import { constants as fsFlags } from 'node:fs';
import { constants as fsConstants } from 'node:os';
import type { Inode } from '../tree/inode.js';
import { typeBits } from '../tree/inode.js';
import type { FuseMetrics } from './fuse-metrics.js';
import { FsError, type TimeSpec, type Vfs } from './vfs.js';

const { O_RDWR } = fsFlags;

type Cb = (...args: unknown[]) => void;

/** FUSE answers with negative errno numbers. */
export function errnoNumber(name: string): number {
  const n = (fsConstants.errno as Record<string, number>)[name];
  return -(n ?? fsConstants.errno.EIO);
}

function errnoOf(err: unknown): string {
  if (err instanceof FsError) return err.errno;
  const e = err as { errno?: unknown; code?: unknown };
  if (typeof e?.errno === 'string') return e.errno;
  if (typeof e?.code === 'string' && e.code.startsWith('E') && e.code in fsConstants.errno) return e.code;
  return 'EIO';
}

export function toStat(i: Inode): Record<string, number> {
  return {
    mode: typeBits(i.kind) | i.mode,
    uid: i.uid,
    gid: i.gid,
    size: i.size,
    nlink: i.nlink,
    ino: i.ino,
    blksize: 4096,
    blocks: Math.ceil(i.size / 512),
    atime: i.atimeMs,
    mtime: i.mtimeMs,
    ctime: i.ctimeMs,
    dev: 0,
    rdev: 0,
  };
}

export interface StatfsSource {
  statfs(): { bsize: number; blocks: number; bfree: number; bavail: number; files: number; ffree: number };
}

/** Caller identity for new files; fuse-native 2.2.6 does not expose fuse_get_context, see FUSE.md. */
export interface CallerSource {
  caller(): { uid: number; gid: number };
}

/**
 * The handlers fuse-native calls, mapped onto the Vfs. Each reply is timed and counted; errors
 * become the errno the Vfs chose, and anything unexpected becomes EIO (logged), never a crash.
 */
export function fuseOps(vfs: Vfs, metrics: FuseMetrics, disk: StatfsSource, who: CallerSource, log: (msg: string) => void): Record<string, (...args: never[]) => void> {
  function run<T>(op: string, cb: Cb, fn: () => T | Promise<T>, reply: (v: T) => unknown[] = (v) => [0, v]): void {
    const end = metrics.latency.startTimer({ op });
    const fail = (err: unknown): void => {
      const name = errnoOf(err);
      if (!(err instanceof FsError) && name === 'EIO') log(`${op} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      metrics.ops.inc({ op, result: name });
      end();
      cb(errnoNumber(name));
    };
    const ok = (v: T): void => {
      metrics.ops.inc({ op, result: 'ok' });
      end();
      cb(...reply(v));
    };
    try {
      const r = fn();
      if (r instanceof Promise) r.then(ok, fail);
      else ok(r);
    } catch (err) {
      fail(err);
    }
  }
  const done = (): unknown[] => [0];
  const time = (t: unknown): TimeSpec => (t === 'now' || t === 'omit' ? t : Number(t));

  return {
    init: (cb: Cb) => cb(0),
    access: (path: string, _mode: number, cb: Cb) => run('access', cb, () => vfs.getattr(path), done),
    statfs: (_path: string, cb: Cb) =>
      run('statfs', cb, () => {
        const s = disk.statfs();
        return { ...s, frsize: s.bsize, favail: s.ffree, fsid: 0, flag: 0, namemax: 255 };
      }),
    getattr: (path: string, cb: Cb) => run('getattr', cb, () => toStat(vfs.getattr(path))),
    fgetattr: (_path: string, fd: number, cb: Cb) => run('fgetattr', cb, () => toStat(vfs.fgetattr(fd))),
    readdir: (path: string, cb: Cb) => run('readdir', cb, () => vfs.readdir(path)),
    readlink: (path: string, cb: Cb) => run('readlink', cb, () => vfs.readlink(path)),
    opendir: (path: string, _flags: number, cb: Cb) => run('opendir', cb, () => (vfs.readdir(path), 0)),
    releasedir: (_path: string, _fd: number, cb: Cb) => cb(0),
    mkdir: (path: string, mode: number, cb: Cb) => run('mkdir', cb, () => vfs.mknode(path, 'dir', mode | typeBits('dir'), who.caller().uid, who.caller().gid), done),
    rmdir: (path: string, cb: Cb) => run('rmdir', cb, () => vfs.rmdir(path), done),
    unlink: (path: string, cb: Cb) => run('unlink', cb, () => vfs.unlink(path), done),
    rename: (src: string, dest: string, cb: Cb) => run('rename', cb, () => vfs.rename(src, dest), done),
    link: (src: string, dest: string, cb: Cb) => run('link', cb, () => vfs.link(src, dest), done),
    symlink: (target: string, path: string, cb: Cb) => run('symlink', cb, () => vfs.mknode(path, 'symlink', 0o777 | typeBits('symlink'), who.caller().uid, who.caller().gid, target), done),
    chmod: (path: string, mode: number, cb: Cb) => run('chmod', cb, () => vfs.setattr(path, { mode }), done),
    chown: (path: string, uid: number, gid: number, cb: Cb) => run('chown', cb, () => vfs.setattr(path, { uid, gid }), done),
    utimens: (path: string, atime: unknown, mtime: unknown, cb: Cb) => run('utimens', cb, () => vfs.setattr(path, { atime: time(atime), mtime: time(mtime) }), done),
    truncate: (path: string, size: number, cb: Cb) => run('truncate', cb, () => vfs.truncate(path, size), done),
    ftruncate: (_path: string, fd: number, size: number, cb: Cb) => run('ftruncate', cb, () => vfs.ftruncate(fd, size), done),
    open: (path: string, flags: number, cb: Cb) => run('open', cb, () => vfs.open(path, flags)),
    create: (path: string, mode: number, cb: Cb, flags?: number) => run('create', cb, () => vfs.create(path, mode, flags ?? O_RDWR, who.caller().uid, who.caller().gid)),
    read: (_path: string, fd: number, buf: Buffer, len: number, pos: number, cb: Cb) =>
      run(
        'read',
        cb,
        async () => {
          const data = await vfs.read(fd, pos, len);
          data.copy(buf);
          return data.length;
        },
        (n) => [n],
      ),
    write: (_path: string, fd: number, buf: Buffer, len: number, pos: number, cb: Cb) =>
      // The buffer is FUSE's memory, reused after the reply: copy before anything keeps it.
      run('write', cb, () => vfs.write(fd, pos, Buffer.from(buf.subarray(0, len))), (n) => [n]),
    flush: (_path: string, _fd: number, cb: Cb) => cb(0),
    release: (_path: string, fd: number, cb: Cb) => run('release', cb, () => vfs.release(fd), done),
    fsync: (_path: string, _datasync: boolean, _fd: number, cb: Cb) => run('fsync', cb, () => vfs.fsync(), done),
    fsyncdir: (_path: string, _datasync: boolean, _fd: number, cb: Cb) => run('fsyncdir', cb, () => vfs.fsync(), done),
    setxattr: (_p: string, _n: string, _v: Buffer, _pos: number, _f: number, cb: Cb) => cb(errnoNumber('ENOTSUP')),
    getxattr: (_p: string, _n: string, _pos: number, cb: Cb) => cb(errnoNumber('ENOTSUP')),
    listxattr: (_p: string, cb: Cb) => cb(0, []),
    removexattr: (_p: string, _n: string, cb: Cb) => cb(errnoNumber('ENOTSUP')),
  };
}
