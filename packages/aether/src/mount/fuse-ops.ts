import { constants as fsFlags } from 'node:fs';
import type { Inode } from '../tree/inode.js';
import { typeBits } from '../tree/inode.js';
import type { FuseHandlers, FuseStat, FuseStatfs, FuseTime } from './fuse-binding.js';
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
export function fuseHandlers(vfs: Vfs, metrics: FuseMetrics, disk: DiskStats, who: CallerSource): FuseHandlers {
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
    getattr: timed('getattr', (path: string) => {
      const inode = vfs.getattr(path);
      return toStat(inode, vfs.allocatedBytes(inode.ino));
    }),
    access: timed('access', (path: string) => void vfs.getattr(path)),
    statfs: timed('statfs', (): FuseStatfs => {
      const s = disk.statfs();
      return { ...s, frsize: s.bsize, favail: s.ffree, fsid: 0, flag: 0, namemax: 255 };
    }),
    readdir: timed('readdir', (path: string) => vfs.readdir(path)),
    fsyncdir: timed('fsyncdir', () => vfs.fsync()),
    open: timed('open', (path: string, flags: number) => vfs.open(path, flags)),
    create: timed('create', (path: string, mode: number, flags: number) => {
      const { uid, gid } = who.caller();
      return vfs.create(path, mode, flags || fsFlags.O_RDWR, uid, gid);
    }),
    read: timed('read', async (_path: string, fh: number, buffer: Buffer, length: number, position: number) => {
      const data = await vfs.read(fh, position, length);
      data.copy(buffer);
      return data.length;
    }),
    // The buffer is the kernel request's memory, valid until the reply: the Vfs copies what it keeps.
    write: timed('write', (_path: string, fh: number, buffer: Buffer, length: number, position: number) => vfs.write(fh, position, buffer.subarray(0, length))),
    release: timed('release', (_path: string, fh: number) => vfs.release(fh)),
    fsync: timed('fsync', () => vfs.fsync()),
    truncate: timed('truncate', (path: string, size: number) => vfs.truncate(path, size)),
    ftruncate: timed('ftruncate', (_path: string, fh: number, size: number) => vfs.ftruncate(fh, size)),
    unlink: timed('unlink', (path: string) => vfs.unlink(path)),
    rename: timed('rename', (from: string, to: string) => vfs.rename(from, to)),
    link: timed('link', (existing: string, path: string) => vfs.link(existing, path)),
    symlink: timed('symlink', async (target: string, path: string) => {
      const { uid, gid } = who.caller();
      await vfs.mknode(path, 'symlink', 0o777 | typeBits('symlink'), uid, gid, target);
    }),
    readlink: timed('readlink', (path: string) => vfs.readlink(path)),
    mkdir: timed('mkdir', async (path: string, mode: number) => {
      const { uid, gid } = who.caller();
      await vfs.mknode(path, 'dir', mode | typeBits('dir'), uid, gid);
    }),
    rmdir: timed('rmdir', (path: string) => vfs.rmdir(path)),
    // libfuse makes regular files with create; only special files get here, and Vfs refuses them
    // with ENOTSUP. Without this handler libfuse answered ENOSYS ("Function not implemented").
    mknod: timed('mknod', async (path: string, mode: number) => {
      const { uid, gid } = who.caller();
      await vfs.mknode(path, 'file', mode, uid, gid);
    }),
    chmod: timed('chmod', (path: string, mode: number) => vfs.setattr(path, { mode })),
    chown: timed('chown', (path: string, uid: number, gid: number) => vfs.setattr(path, { uid, gid })),
    utimens: timed('utimens', (path: string, atime: FuseTime, mtime: FuseTime) => vfs.setattr(path, { atime: time(atime), mtime: time(mtime) })),
  };
}
