import { constants as fsFlags } from 'node:fs';
import { posix } from 'node:path';
import type { Inode } from '../tree/inode.js';
import { typeBits } from '../tree/inode.js';
import type { BindingAttrs, FuseHandlers, FuseStat, FuseStatfs, FuseTime } from './fuse-binding.js';
import type { FuseMetrics } from './fuse-metrics.js';
import type { Vfs } from './vfs.js';

/** `allocatedBytes`: the bytes that hold data (holes do not count), for st_blocks. */
export function toStat(i: Inode, allocatedBytes = i.size): FuseStat {
  return {
    mode: typeBits(i.kind) | i.mode,
    uid: i.uid,
    gid: i.gid,
    size: i.size,
    nlink: i.nlink,
    ino: i.ino,
    blksize: 4096,
    blocks: Math.ceil(allocatedBytes / 512),
    atime: i.atimeMs,
    mtime: i.mtimeMs,
    ctime: i.ctimeMs,
  };
}

export interface DiskStats {
  statfs(): { bsize: number; blocks: number; bfree: number; bavail: number; files: number; ffree: number };
}

/** Who asks: owner of new files. fuse-native 2.2.6 does not expose fuse_get_context (see FUSE.md). */
export interface CallerSource {
  caller(): { uid: number; gid: number };
}

function resultOf(err: unknown): string {
  const e = err as { code?: unknown; errno?: unknown } | null;
  if (typeof e?.code === 'string' && /^E[A-Z]+$/.test(e.code)) return e.code;
  if (typeof e?.errno === 'string') return e.errno;
  return 'EIO';
}

/**
 * The FUSE handlers, mapped onto the Vfs; each reply is timed and counted by operation and result.
 * Left out on purpose: the extended-attribute calls, flush, opendir and releasedir. libfuse then
 * answers ENOSYS, and the kernel remembers it and stops asking: programs see ENOTSUP for extended
 * attributes, and no write or close pays a round trip for `security.capability` or a no-op flush.
 */
export function fuseHandlers(vfs: Vfs, metrics: FuseMetrics, disk: DiskStats, who: CallerSource, attrs?: BindingAttrs | null): FuseHandlers {
  const statOf = (path: string): FuseStat => {
    const inode = vfs.getattr(path);
    return toStat(inode, vfs.allocatedBytes(inode.ino));
  };
  // An operation that may change attributes clears what the binding answers getattr with, then
  // hands over the attributes the kernel or libfuse asks for next: the parent directory (the
  // kernel dropped its attributes) and a new or changed name (libfuse looks it up after create,
  // mkdir, link, symlink and rename, and reads it back after chmod, chown, utimens, truncate).
  const changes = <A extends unknown[], R>(fn: (...args: A) => R | Promise<R>, touched: (...args: A) => readonly string[] = () => []) =>
    async (...args: A): Promise<R> => {
      if (!attrs) return fn(...args);
      let r: R;
      try {
        r = await fn(...args);
      } finally {
        attrs.clear();
      }
      for (const path of touched(...args)) {
        try {
          attrs.put(path, statOf(path));
        } catch {
          // Gone meanwhile: libfuse asks JS, which answers ENOENT.
        }
      }
      return r;
    };
  // An operation on one file's data or size (write, truncate through a handle, open with
  // O_TRUNC, release) changes that inode's attributes only: the directories' stay good.
  const changesFile = <A extends [string, number, ...unknown[]], R>(inoOf: (path: string, fhOrFlags: number) => number | undefined, fn: (...args: A) => R | Promise<R>) =>
    async (...args: A): Promise<R> => {
      if (!attrs) return fn(...args);
      const ino = inoOf(args[0], args[1]);
      try {
        return await fn(...args);
      } finally {
        if (ino === undefined) attrs.clear();
        else attrs.drop(ino);
      }
    };
  const byHandle = (_path: string, fh: number): number | undefined => vfs.handleIno(fh);
  const byPath = (path: string): number | undefined => {
    try {
      return vfs.getattr(path).ino;
    } catch {
      return undefined;
    }
  };
  const parentOf = (path: string): string => posix.dirname(path);
  const named = (path: string): string[] => [parentOf(path), path];
  const self = (path: string): string[] => [path];
  const timed = <A extends unknown[], R>(op: string, fn: (...args: A) => R | Promise<R>) =>
    async (...args: A): Promise<R> => {
      const end = metrics.latency.startTimer({ op });
      try {
        const r = await fn(...args);
        metrics.ops.inc({ op, result: 'ok' });
        return r;
      } catch (err) {
        metrics.ops.inc({ op, result: resultOf(err) });
        throw err;
      } finally {
        end();
      }
    };
  const time = (t: FuseTime): FuseTime => t;
  return {
    getattr: timed('getattr', statOf),
    access: timed('access', (path: string) => void vfs.getattr(path)),
    statfs: timed('statfs', (): FuseStatfs => {
      const s = disk.statfs();
      return { ...s, frsize: s.bsize, favail: s.ffree, fsid: 0, flag: 0, namemax: 255 };
    }),
    readdir: timed('readdir', (path: string) => vfs.readdir(path)),
    fsyncdir: timed('fsyncdir', () => vfs.fsync()),
    open: timed('open', changesFile(byPath, (path: string, flags: number) => vfs.open(path, flags))),
    create: timed(
      'create',
      changes((path: string, mode: number, flags: number) => {
        const { uid, gid } = who.caller();
        return vfs.create(path, mode, flags || fsFlags.O_RDWR, uid, gid);
      }, named),
    ),
    read: timed('read', async (_path: string, fh: number, buffer: Buffer, length: number, position: number) => {
      const data = await vfs.read(fh, position, length);
      data.copy(buffer);
      return data.length;
    }),
    // The buffer is the kernel request's memory, valid until the reply: the Vfs copies what it keeps.
    write: timed('write', changesFile(byHandle, (_path: string, fh: number, buffer: Buffer, length: number, position: number) => vfs.write(fh, position, buffer.subarray(0, length)))),
    release: timed('release', changesFile(byHandle, (_path: string, fh: number) => vfs.release(fh))),
    fsync: timed('fsync', () => vfs.fsync()),
    truncate: timed('truncate', changes((path: string, size: number) => vfs.truncate(path, size), self)),
    ftruncate: timed('ftruncate', changesFile(byHandle, (_path: string, fh: number, size: number) => vfs.ftruncate(fh, size))),
    unlink: timed('unlink', changes((path: string) => vfs.unlink(path), (path) => [parentOf(path)])),
    rename: timed('rename', changes((from: string, to: string) => vfs.rename(from, to), (from, to) => [parentOf(from), ...named(to)])),
    link: timed('link', changes((existing: string, path: string) => vfs.link(existing, path), (_existing, path) => named(path))),
    symlink: timed(
      'symlink',
      changes(async (target: string, path: string) => {
        const { uid, gid } = who.caller();
        await vfs.mknode(path, 'symlink', 0o777 | typeBits('symlink'), uid, gid, target);
      }, (_target, path) => named(path)),
    ),
    readlink: timed('readlink', (path: string) => vfs.readlink(path)),
    mkdir: timed(
      'mkdir',
      changes(async (path: string, mode: number) => {
        const { uid, gid } = who.caller();
        await vfs.mknode(path, 'dir', mode | typeBits('dir'), uid, gid);
      }, named),
    ),
    rmdir: timed('rmdir', changes((path: string) => vfs.rmdir(path), (path) => [parentOf(path)])),
    // libfuse makes regular files with create; only special files get here, and Vfs refuses them
    // with ENOTSUP. Without this handler libfuse answered ENOSYS ("Function not implemented").
    mknod: timed(
      'mknod',
      changes(async (path: string, mode: number) => {
        const { uid, gid } = who.caller();
        await vfs.mknode(path, 'file', mode, uid, gid);
      }, named),
    ),
    chmod: timed('chmod', changes((path: string, mode: number) => vfs.setattr(path, { mode }), self)),
    chown: timed('chown', changes((path: string, uid: number, gid: number) => vfs.setattr(path, { uid, gid }), self)),
    utimens: timed('utimens', changes((path: string, atime: FuseTime, mtime: FuseTime) => vfs.setattr(path, { atime: time(atime), mtime: time(mtime) }), self)),
  };
}
