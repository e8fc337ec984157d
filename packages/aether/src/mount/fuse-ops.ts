import { constants as fsFlags } from 'node:fs';
import { posix } from 'node:path';
import type { Inode } from '../tree/inode.js';
import { typeBits } from '../tree/inode.js';
import type { BindingAttrs, FuseHandlers, FuseStat, FuseStatfs, FuseTime } from './fuse-binding.js';
import type { FuseMetrics } from './fuse-metrics.js';
import { FsError, type DirEntry, type Vfs } from './vfs.js';

const DIR_BYTES = 4096;

/** `allocatedBytes`: the bytes that hold data (holes do not count), for st_blocks. */
export function toStat(i: Inode, allocatedBytes = i.size): FuseStat {
  // A directory reports one block, as ext4 does for a small one: some programs take size 0 for empty.
  const dir = i.kind === 'dir';
  return {
    mode: typeBits(i.kind) | i.mode,
    uid: i.uid,
    gid: i.gid,
    size: dir ? DIR_BYTES : i.size,
    nlink: i.nlink,
    ino: i.ino,
    blksize: 4096,
    // Whole 4 KiB blocks, in 512-byte units, as ext4 counts them: `du` agrees with a local disk.
    blocks: Math.ceil((dir ? DIR_BYTES : allocatedBytes) / 4096) * 8,
    atime: i.atimeMs,
    mtime: i.mtimeMs,
    ctime: i.ctimeMs,
  };
}

/** What libfuse reads of a readdir entry's stat: the inode and the type bits. */
function direntStat(e: DirEntry): FuseStat {
  return { mode: typeBits(e.kind), uid: 0, gid: 0, size: 0, nlink: 1, ino: e.ino, atime: 0, mtime: 0, ctime: 0 };
}

export interface DiskStats {
  statfs(): { bsize: number; blocks: number; bfree: number; bavail: number; files: number; ffree: number };
}

/** Who asks: owner of new files. fuse-native 2.2.6 does not expose fuse_get_context (see FUSE.md). */
export interface CallerSource {
  caller(): { uid: number; gid: number };
}

const O_ACCMODE = 0o3;

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
  const slow = /^(.+):(\d+)$/.exec(process.env.AETHER_TEST_SLOW_LOOKUP ?? '');
  const slowLookup = slow ? { name: slow[1]!, ms: Number(slow[2]) } : undefined;
  const statOf = (path: string): FuseStat => {
    const inode = vfs.getattr(path);
    return toStat(inode, vfs.allocatedBytes(inode.ino));
  };
  // What an operation does to the attributes the binding answers getattr with (BindingAttrs):
  // before it runs, the names it changes and those it will hand over are dropped (everything for
  // a rename, which moves every path below it), so that while it is in flight JS answers; after
  // it, what the kernel or libfuse asks for next is handed over: the parent directory, whose
  // attributes the kernel drops; a new name, which libfuse looks up; a file just written or opened
  // for reading, whose attributes the kernel drops after a write or a read. A failure other than
  // the Vfs's own refusal (which changes nothing) may come after the view changed: everything goes.
  // Never handed over: a file with several names, or one also kept under libfuse's hidden name
  // (unlinked while open), since a change through one name would leave the others.
  // A directory just made is handed over as complete (`emptyDir`): the binding then answers
  // lookups of names absent from it. A name removed is forgotten (`gone`) once it is gone.
  type Plan = { drop?: readonly string[] | 'all'; put?: readonly string[]; emptyDir?: string; gone?: string };
  const changes = <A extends [unknown, unknown, ...unknown[]] | [unknown], R>(plan: (first: A[0], second: A[1]) => Plan, fn: (...args: A) => R | Promise<R>) =>
    async (...args: A): Promise<R> => {
      if (!attrs) return fn(...args);
      const p = plan(args[0], args[1]);
      if (p.drop === 'all') attrs.clear();
      else for (const path of [...(p.drop ?? []), ...(p.put ?? [])]) attrs.drop(path);
      let r: R;
      try {
        r = await fn(...args);
      } catch (err) {
        if (!(err instanceof FsError && err.code !== 'EIO')) attrs.clear();
        throw err;
      }
      for (const path of p.put ?? []) {
        try {
          const inode = vfs.getattr(path);
          if (inode.kind === 'dir' || (inode.nlink <= 1 && !vfs.hasHiddenName(inode.ino))) attrs.put(path, toStat(inode, vfs.allocatedBytes(inode.ino)), path === p.emptyDir);
        } catch {
          // Gone meanwhile: libfuse asks JS, which answers ENOENT.
        }
      }
      if (p.gone !== undefined) attrs.forget(p.gone);
      return r;
    };
  const parentOf = (path: string): string => posix.dirname(path);
  const created = (path: string): Plan => ({ put: [parentOf(path), path] });
  const removed = (path: string): Plan => ({ drop: [path], put: [parentOf(path)], gone: path });
  const changed = (path: string): Plan => ({ drop: [path], put: [path] });
  const opened = (path: string, flags: number): Plan => ((flags & O_ACCMODE) === fsFlags.O_RDONLY && !(flags & fsFlags.O_TRUNC) ? { put: [path] } : { drop: [path] });
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
    // `ofNode`: the kernel asks for a file it holds (a GETATTR, not a lookup: the patched binding
    // tells). A file open here whose name another mount removed is held by that name, and fstat(2)
    // sends no handle: the open file answers (FUSE.md "fstat of a file whose name is gone").
    getattr: timed('getattr', (path: string, ofNode?: boolean) => {
      // AETHER_TEST_SLOW_LOOKUP=NAME:MS (a test seam): a lookup of NAME waits MS in JS, holding its directory's lock in the kernel (session-watch.test.ts).
      if (slowLookup && path.endsWith(`/${slowLookup.name}`)) return new Promise<never>((_, reject) => setTimeout(() => reject(new FsError('ENOENT', path)), slowLookup.ms));
      try {
        return statOf(path);
      } catch (err) {
        const ino = ofNode && err instanceof FsError && err.code === 'ENOENT' ? vfs.openedAt(path) : undefined;
        if (ino === undefined) throw err;
        return toStat(vfs.inode(ino), vfs.allocatedBytes(ino));
      }
    }),
    // Without binding attributes (bridge mode) every getattr comes here anyway. The kernel sends
    // the handle when it refreshes attributes for a read or a truncate through a descriptor: an
    // open file another mount removed is then found by it (its path no longer resolves; fstat(2)
    // sends none, FUSE.md). With binding attributes it stays a getattr the binding answers.
    ...(attrs
      ? {}
      : {
          fgetattr: timed('fgetattr', (path: string, fh: number) => {
            const ino = vfs.handleIno(fh);
            if (ino === undefined) return statOf(path);
            // The path answers while it still names the handle's inode (a hidden name's nlink is
            // adjusted there); once removed or replaced (an editor's save on another mount), the handle.
            let named: Inode | undefined;
            try {
              named = vfs.getattr(path);
            } catch (err) {
              if (!(err instanceof FsError)) throw err;
            }
            return toStat(named?.ino === ino ? named : vfs.inode(ino), vfs.allocatedBytes(ino));
          }),
        }),
    access: timed('access', (path: string) => void vfs.getattr(path)),
    // No file holds extended attributes: listing them finds none, as on a local disk (an error
    // made `tar --xattrs` warn about every file and `rsync -X` exit 23). getxattr stays unbound:
    // the kernel then answers EOPNOTSUPP itself and stops asking, where an answer would cost a
    // round trip on every write (the kernel looks for security.capability before each).
    listxattr: timed('listxattr', (path: string): string[] => {
      vfs.getattr(path);
      return [];
    }),
    statfs: timed('statfs', (): FuseStatfs => {
      let s;
      try {
        s = disk.statfs();
      } catch (err) {
        // Never the state directory's own errno: ENOTCONN (it lies on a dead FUSE mount) would
        // tell `inspectMountpoint` that this live mount is a stale one, to be unmounted.
        throw new FsError('EIO', `statfs of the state directory failed: ${(err as Error).message}`);
      }
      return { ...s, frsize: s.bsize, favail: s.ffree, fsid: 0, flag: 0, namemax: 255 };
    }),
    // `.` and `..` lead, as on a local disk (`ls -a`); libfuse 2.9 adds neither.
    // Each entry's inode and type go with its name: d_ino and d_type (find, git and scandir
    // trust them; without them every entry needs a stat, and `ls -i` showed 4294967295).
    readdir: timed('readdir', (path: string) => {
      const entries = vfs.readdir(path);
      return { names: entries.map((e) => e.name), stats: entries.map(direntStat) };
    }),
    fsyncdir: timed('fsyncdir', () => vfs.fsync()),
    open: timed('open', changes(opened, (path: string, flags: number) => vfs.open(path, flags))),
    create: timed(
      'create',
      changes(created, (path: string, mode: number, flags: number) => {
        const { uid, gid } = who.caller();
        return vfs.create(path, mode, flags || fsFlags.O_RDWR, uid, gid);
      }),
    ),
    read: timed('read', (_path: string, fh: number, buffer: Buffer, length: number, position: number) => vfs.readInto(fh, position, length, buffer)),
    // The buffer is the kernel request's memory, valid until the reply: the Vfs copies what it keeps.
    write: timed('write', changes(changed, (_path: string, fh: number, buffer: Buffer, length: number, position: number, pageWriteback?: boolean) => vfs.write(fh, position, buffer.subarray(0, length), pageWriteback))),
    // A release changes no attributes: the inode of an unlinked file had its entries dropped then.
    release: timed('release', (_path: string, fh: number) => vfs.release(fh)),
    fsync: timed('fsync', () => vfs.fsync()),
    truncate: timed('truncate', changes(changed, (path: string, size: number) => vfs.truncate(path, size))),
    ftruncate: timed('ftruncate', changes(changed, (_path: string, fh: number, size: number) => vfs.ftruncate(fh, size))),
    // Space is not set aside (data takes it in the cache, the journal and the store as it comes),
    // but a request for more than the state directory's disk has free is refused, as a disk would.
    fallocate: timed(
      'fallocate',
      changes(changed, (_path: string, fh: number, mode: number, offset: number, length: number) =>
        vfs.fallocate(fh, mode, offset, length, () => {
          const s = disk.statfs();
          return s.bavail * s.bsize;
        }),
      ),
    ),
    unlink: timed('unlink', changes(removed, (path: string) => vfs.unlink(path))),
    rename: timed('rename', changes((from: string, to: string) => ({ drop: 'all', put: [parentOf(from), parentOf(to), to] }), (from: string, to: string, forRename?: boolean) => vfs.rename(from, to, 0, forRename))),
    link: timed('link', changes((existing: string, path: string) => ({ drop: [existing], put: [parentOf(path), path] }), (existing: string, path: string) => vfs.link(existing, path))),
    symlink: timed(
      'symlink',
      changes((_target: string, path: string) => created(path), async (target: string, path: string) => {
        const { uid, gid } = who.caller();
        await vfs.mknode(path, 'symlink', 0o777 | typeBits('symlink'), uid, gid, target);
      }),
    ),
    readlink: timed('readlink', (path: string) => vfs.readlink(path)),
    mkdir: timed(
      'mkdir',
      changes((path: string) => ({ ...created(path), emptyDir: path }), async (path: string, mode: number) => {
        const { uid, gid } = who.caller();
        await vfs.mknode(path, 'dir', mode | typeBits('dir'), uid, gid);
      }),
    ),
    rmdir: timed('rmdir', changes(removed, (path: string) => vfs.rmdir(path))),
    // libfuse makes regular files with create; only special files get here, and Vfs refuses them
    // with ENOTSUP. Without this handler libfuse answered ENOSYS ("Function not implemented").
    mknod: timed(
      'mknod',
      changes(created, async (path: string, mode: number) => {
        const { uid, gid } = who.caller();
        await vfs.mknode(path, 'file', mode, uid, gid);
      }),
    ),
    chmod: timed('chmod', changes(changed, (path: string, mode: number) => vfs.setattr(path, { mode }))),
    chown: timed('chown', changes(changed, (path: string, uid: number, gid: number) => vfs.setattr(path, { uid, gid }))),
    utimens: timed('utimens', changes(changed, (path: string, atime: FuseTime, mtime: FuseTime) => vfs.setattr(path, { atime: time(atime), mtime: time(mtime) }))),
  };
}
