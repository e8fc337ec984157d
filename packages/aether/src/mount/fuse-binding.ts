/**
 * The typed boundary between Aether and fuse-native 2.2.6 (patched at install, see FUSE.md).
 * Handlers are async and throw to fail: an error carrying an errno name (a Node fs error's `code`,
 * an AetherError's `errno`, or one made by `fuseError`) answers with that errno; anything else
 * answers EIO and is reported through `onHandlerError`.
 */
import { execFile, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { constants as osConstants } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { AetherError } from '../errors.js';
import type { OutsideSync } from '../runtime/journal/index.js';
import { runAs, setInterruptSource } from './interrupts.js';
import { LoopSpin } from './loop-spin.js';
import { fuseOptionString, type FuseMountOptions } from './mount-options.js';
import { isMountpoint, prepareMountpoint, setMountReadahead, type MountpointCheckOptions } from './mountpoint.js';

export { fuseOptionList, fuseOptionString, MAX_WRITE_BYTES_MAX, MAX_WRITE_BYTES_MIN, type FuseMountOptions } from './mount-options.js';
export { cleanStaleMount, inspectMountpoint, isMountpoint, mountDevice, prepareMountpoint, type MountpointCheckOptions, type MountpointState } from './mountpoint.js';

// ---- errno ----------------------------------------------------------------------------------

export type ErrnoName = keyof typeof osConstants.errno;

/** Negative errno values as FUSE handlers answer them (`Errno.ENOENT === -2`), same as `Fuse.ENOENT`. */
export const Errno: Readonly<Record<ErrnoName, number>> = Object.freeze(
  Object.fromEntries(Object.entries(osConstants.errno).map(([k, v]) => [k, -v])) as Record<ErrnoName, number>,
);

function isErrnoName(s: string): s is ErrnoName {
  return Object.hasOwn(osConstants.errno, s);
}

/** An error that makes a handler answer `name`, shaped like Node's own fs errors. */
export function fuseError(name: ErrnoName, message: string = name): Error & { code: ErrnoName } {
  return Object.assign(new Error(message), { code: name });
}

/** The negative errno a failed handler answers with, or undefined when the error names none. */
export function errnoOf(err: unknown): number | undefined {
  const name = err instanceof AetherError ? err.errno : (err as { code?: unknown } | null)?.code;
  return typeof name === 'string' && isErrnoName(name) ? Errno[name] : undefined;
}

// ---- times ----------------------------------------------------------------------------------

/** The patched binding's sentinels for UTIME_NOW and UTIME_OMIT (values no real ms time reaches). */
export const UTIME_NOW_MS = 2 ** 53 - 1;
export const UTIME_OMIT_MS = 2 ** 53 - 2;

/** `'now'`: set to the current time; `'omit'`: leave unchanged; a number: ms since the epoch. */
export type FuseTime = 'now' | 'omit' | number;

/**
 * Times reach JS as signed ms (a time before 1970 is negative; the patched binding clamps at
 * +-2^53); anything else is not a time: undefined, which the utimens adapter answers with EINVAL.
 */
export function decodeUtime(ms: number): FuseTime | undefined {
  if (ms === UTIME_NOW_MS) return 'now';
  if (ms === UTIME_OMIT_MS) return 'omit';
  return Number.isSafeInteger(ms) ? ms : undefined;
}

function utimeArg(ms: number): FuseTime {
  const t = decodeUtime(ms);
  if (t === undefined) throw fuseError('EINVAL', `utimens: ${ms} ms is not a representable time`);
  return t;
}

// ---- handler types --------------------------------------------------------------------------

/** fuse-native carries ino, dev, nlink, uid, gid as 32 bits and times in ms. */
export interface FuseStat {
  mode: number;
  size: number;
  uid?: number;
  gid?: number;
  nlink?: number;
  ino?: number;
  dev?: number;
  rdev?: number;
  blksize?: number;
  blocks?: number;
  atime: Date | number;
  mtime: Date | number;
  ctime: Date | number;
}

export interface FuseStatfs {
  bsize: number;
  frsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  favail: number;
  fsid: number;
  flag: number;
  namemax: number;
}

/** Names, and optionally one stat per name (used for d_ino/d_type with use_ino or readdir_ino). */
export type FuseDirEntries = readonly string[] | { names: readonly string[]; stats: readonly FuseStat[] };

/**
 * What Aether implements. `fh` is the handle open/create/opendir returned (1 to 2^31-1; returning
 * nothing leaves it 0). Buffers handed to read and write belong to the kernel request and are
 * detached when the handler settles: copy what must outlive it. With `hard_remove`, flush and release
 * of an unlinked file get the path `-` (FUSE.md).
 */
export interface FuseHandlers {
  /** `ofNode`: a GETATTR of a node the kernel holds, not a lookup of a name (the patched binding tells). */
  getattr?(path: string, ofNode?: boolean): Promise<FuseStat>;
  /** fstat(2) of an open file (the patched binding passes the handle; unpatched, it asked getattr). */
  fgetattr?(path: string, fh: number): Promise<FuseStat>;
  access?(path: string, mode: number): Promise<void>;
  statfs?(path: string): Promise<FuseStatfs>;
  opendir?(path: string, flags: number): Promise<number | void>;
  readdir?(path: string): Promise<FuseDirEntries>;
  releasedir?(path: string, fh: number): Promise<void>;
  fsyncdir?(path: string, datasync: boolean, fh: number): Promise<void>;
  open?(path: string, flags: number): Promise<number | void>;
  /** `flags` are the open(2) flags (O_APPEND, O_EXCL, ...), passed by the patched binding. */
  create?(path: string, mode: number, flags: number): Promise<number | void>;
  /** Fills `buffer` from `position`; resolves to the bytes read (0 at end of file). */
  read?(path: string, fh: number, buffer: Buffer, length: number, position: number): Promise<number>;
  /**
   * Resolves to the bytes written; fewer than `length` is a short write. `pageWriteback`: the
   * kernel writes back pages of a shared mapping (the patched binding tells): `position` is the
   * page's, also on a file opened with O_APPEND.
   */
  write?(path: string, fh: number, buffer: Buffer, length: number, position: number, pageWriteback?: boolean): Promise<number>;
  flush?(path: string, fh: number): Promise<void>;
  release?(path: string, fh: number): Promise<void>;
  fsync?(path: string, datasync: boolean, fh: number): Promise<void>;
  truncate?(path: string, size: number): Promise<void>;
  ftruncate?(path: string, fh: number, size: number): Promise<void>;
  /** fallocate(2) (the patched binding binds it; `mode` holds the FALLOC_FL_* flags). */
  fallocate?(path: string, fh: number, mode: number, offset: number, length: number): Promise<void>;
  unlink?(path: string): Promise<void>;
  /** libfuse 2.9 passes no rename flags: RENAME_NOREPLACE/RENAME_EXCHANGE never get here (FUSE.md). */
  rename?(from: string, to: string, forRename?: boolean): Promise<void>;
  link?(existing: string, newPath: string): Promise<void>;
  symlink?(target: string, linkPath: string): Promise<void>;
  readlink?(path: string): Promise<string>;
  mkdir?(path: string, mode: number): Promise<void>;
  rmdir?(path: string): Promise<void>;
  mknod?(path: string, mode: number, dev: number): Promise<void>;
  chmod?(path: string, mode: number): Promise<void>;
  chown?(path: string, uid: number, gid: number): Promise<void>;
  utimens?(path: string, atime: FuseTime, mtime: FuseTime): Promise<void>;
  /** `flags`: XATTR_CREATE (1) or XATTR_REPLACE (2). */
  setxattr?(path: string, name: string, value: Buffer, flags: number): Promise<void>;
  /** null answers ENODATA (no such attribute). */
  getxattr?(path: string, name: string): Promise<Buffer | null>;
  listxattr?(path: string): Promise<readonly string[]>;
  removexattr?(path: string, name: string): Promise<void>;
}

export type FuseOpName = keyof FuseHandlers;

export interface FuseMountHooks {
  /** A handler failed with an error that names no errno; the kernel got EIO. Default: one stderr line. */
  onHandlerError?(op: FuseOpName, err: unknown): void;
  /** Microseconds the event loop keeps polling after each request (LoopSpin). Default 0: it sleeps. */
  loopSpinMicros?: number;
  /** Called as each request reaches JS (before its handler). */
  onRequest?(): void;
  /** Attributes the binding answers this mount's getattr requests with, from its mount to its unmount (released then). */
  bindingAttrs?: BindingAttrs | null;
  /** fsync(2) answered in the binding for this mount, once allowed, from its mount to its unmount (released then). */
  bindingSync?: BindingSync | null;
}

// ---- fuse-native, as far as Aether uses it -------------------------------------------------

type NativeCallback = (...args: unknown[]) => void;
type NativeOp = (...args: unknown[]) => void;
type NativeOps = Partial<Record<FuseOpName, NativeOp>>;
type Signal = (res: number, ...rest: unknown[]) => void;

interface NativeFuseInstance {
  ops: NativeOps;
  /** fuse-native's per-mount native state (a fuse_thread_t), allocated by mount(). */
  _thread: Buffer | null;
  mount(cb: (err: Error | null) => void): void;
  unmount(cb: (err: Error | null) => void): void;
}

interface NativeFuseClass {
  new (mnt: string, ops: NativeOps, opts: { timeout: false }): NativeFuseInstance;
}

const require = createRequire(import.meta.url);
const NativeFuse = require('fuse-native') as NativeFuseClass;
// fuse-native unmounts with `fusermount -uz "<path>"` run by a shell: a mount point named with
// `$(...)` ran that command at the unmount (a review), and one holding a newline or a backslash
// stayed mounted. Here the path is an argument, never shell text. A mount point no longer
// mounted (unmounted from outside: fusermount -u, umount) has nothing left to unmount.
(NativeFuse as unknown as { unmount: (mnt: string, cb: (err: Error | null) => void) => void }).unmount = (mnt, cb) => {
  const settle = (err: Error | null): void => {
    if (!err) return cb(null);
    isMountpoint(mnt).then(
      (still) => cb(still ? err : null),
      () => cb(err),
    );
  };
  execFile('fusermount', ['-u', '-z', mnt], (err) => {
    if ((err as NodeJS.ErrnoException | null)?.code !== 'ENOENT') return settle(err);
    execFile('fusermount3', ['-u', '-z', mnt], (err3) => settle(err3));
  });
};
// The addon itself, loaded the way fuse-native loads it, for what the patch adds.
const fuseNativeDir = dirname(require.resolve('fuse-native/package.json'));
const nativeAddon = createRequire(join(fuseNativeDir, 'package.json'))('node-gyp-build')(fuseNativeDir) as {
  fuse_native_get_context(): [number, number, number];
  fuse_native_reserve(fd: number, offset: number, length: number): number;
  fuse_native_take_interrupts(): object[];
  fuse_native_attr_guard(): boolean;
  fuse_native_self_rename(request: Buffer): boolean;
  fuse_native_set_uncached(ino: number, on: boolean): void;
  fuse_native_attrs_put(path: string, ints: Buffer, complete: boolean): void;
  fuse_native_attrs_clear(): void;
  fuse_native_attrs_drop(path: string): void;
  fuse_native_attrs_forget(path: string): void;
  fuse_native_attrs_hits(): number;
  fuse_native_malloc_trim(): boolean;
  fuse_native_move_nodes(moves: [string, string, boolean][]): number[];
  fuse_native_session_over(): boolean;
  fuse_native_attrs_absent(): number;
  fuse_native_attrs_unchanged(): [number, number];
  fuse_native_attrs_unchanged_allow(on: boolean): void;
  fuse_native_attrs_bind(thread: Buffer | null): void;
  fuse_native_hide_node(path: string): string | false | null;
  fuse_native_inval_nodes(paths: string[]): number;
  fuse_native_sync_bind(thread: Buffer | null): void;
  fuse_native_sync_file(fd: number, on: boolean): boolean;
  fuse_native_sync_take(): number[];
  fuse_native_sync_reset(): void;
  fuse_native_sync_fail_next(errno: number): void;
  fuse_native_sync_files(): number[];
};

/**
 * The uid, gid and pid of the process whose request is being handled (libfuse's fuse_get_context,
 * exposed by the patch). Valid only synchronously inside a handler, before its first await.
 */
/**
 * Reserves disk blocks for a file's bytes [offset, offset + length) without changing its size
 * (fallocate, FALLOC_FL_KEEP_SIZE, which Node lacks); returns 0 or -errno. For the journal.
 */
export function reserveFileSpace(fd: number, offset: number, length: number): number {
  return nativeAddon.fuse_native_reserve(fd, offset, length);
}

export function callerContext(): { uid: number; gid: number; pid: number } {
  const [uid, gid, pid] = nativeAddon.fuse_native_get_context();
  return { uid, gid, pid };
}

/**
 * Installs the patch's per-reply attribute timeouts: a non-directory with more than one link is
 * answered with attribute timeout 0 whatever `attr_timeout` says, because libfuse's high-level
 * API gives each of its names its own kernel inode (FUSE.md). True when installed; when false,
 * attributes must not be cached at all (attr_timeout=0) for hard links to stay coherent. The same
 * hooks answer a rename of a name onto itself (`isSelfRenameRequest`).
 */
export function guardHardLinkAttributes(): boolean {
  return nativeAddon.fuse_native_attr_guard();
}

/**
 * Whether the hook installed with the guard above answers this raw FUSE request (header and
 * arguments, as read from /dev/fuse) itself with ESTALE: a RENAME or RENAME2 of one name onto
 * itself, on which libfuse 2.9 would wait for good (FUSE.md). For tests.
 */
export function isSelfRenameRequest(request: Buffer): boolean {
  return nativeAddon.fuse_native_self_rename(request);
}

/**
 * Moves libfuse's node for `path` (of the mounted file system) to a hidden name in the same
 * directory, as libfuse hides an open file unlinked through the mount, and invalidates the
 * kernel's entry for the old name; returns the hidden name, 'busy' while a request holds the node
 * (try again), or undefined when libfuse has no node for `path` (FUSE.md, "hiding a node whose
 * name another file took").
 */
export function hideNode(path: string): string | 'busy' | undefined {
  const r = nativeAddon.fuse_native_hide_node(path);
  return r === false ? 'busy' : (r ?? undefined);
}

/** What became of one move of `moveNodes`. */
export type NodeMove = 'moved' | 'busy' | undefined;

/**
 * Gives libfuse's nodes for the `from` paths the `to` ones, all at once, after another mount
 * renamed the entries (paths of the mounted file system at `mountpoint`, as before and after
 * the renames): per move 'moved', 'busy' while a request holds a path through the node (try
 * again), or undefined when it was not moved (then hidden; FUSE.md, "moving a node another
 * mount renamed"). The moved directories are then looked up by their new paths from a child
 * process: the kernel moves a directory's one entry (a program's working directory) to the name
 * it finds it under, and getcwd(3) names it (it failed with ENOENT, and git refused to run). Not
 * from this process: a request to the mount that waits for this very process keeps it, and so
 * the session, alive through a kill -9 (a review saw the mount hung for good); the child does
 * not hold the session (close-on-exec), which the kernel then aborts, answering its lookup.
 */
export function moveNodes(mountpoint: string, moves: [from: string, to: string, isDir: boolean][]): NodeMove[] {
  const done: NodeMove[] = nativeAddon.fuse_native_move_nodes(moves).map((r) => (r === 1 ? 'moved' : r === 0 ? 'busy' : undefined));
  const dirs = moves.flatMap(([, to, isDir], i) => (isDir && done[i] === 'moved' ? [mountpoint + to] : []));
  if (dirs.length > 0) spawn('stat', ['--', ...dirs], { stdio: 'ignore' }).on('error', () => undefined).unref();
  return done;
}

/**
 * Drops the kernel's attributes of libfuse's nodes for these paths (of the mounted file system),
 * from a thread of the binding's; with `autoInvalData` their next read drops the cached pages when
 * the mtime changed. Returns how many paths had a node (FUSE.md, "invalidating what another mount
 * changed").
 */
export function invalidateNodes(paths: string[]): number {
  return nativeAddon.fuse_native_inval_nodes(paths);
}

/** malloc_trim(3): gives the C library's freed memory back to the system; true when some went. */
export function releaseFreedMemory(): boolean {
  return nativeAddon.fuse_native_malloc_trim();
}

/**
 * Marks an inode whose attributes the kernel must never cache although its link count is 1: an
 * open file unlinked while it had another name keeps two kernel inodes (libfuse's hidden name is
 * no link). Only effective with the guard installed.
 */
export function setAttributesUncached(ino: number, on: boolean): void {
  nativeAddon.fuse_native_set_uncached(ino >>> 0, on);
}

/**
 * Attributes the patched binding answers getattr with in the FUSE thread, without a round trip
 * to JS (FUSE.md "Attributes answered in the binding"). The caller must drop what each change
 * makes stale before it replies, and may then put what it knows to be current. A directory put
 * as `complete` (just made, so empty) has every name it gains dropped, hence known: the binding
 * answers a lookup of any other name in it with ENOENT.
 */
export interface BindingAttrs {
  put(path: string, stat: FuseStat, complete?: boolean): void;
  clear(): void;
  /** Forgets what was handed over for one name (in a complete directory it stays known to exist). */
  drop(path: string): void;
  /** The name no longer exists (a successful unlink or rmdir). */
  forget(path: string): void;
  /** getattr requests answered from them so far (in this process). */
  hits(): number;
  /** Lookups answered ENOENT for a name absent from a complete directory (in this process). */
  absent(): number;
  /** chown and chmod requests that changed nothing, answered from them (in this process). */
  unchanged(): { chown: number; chmod: number };
  /**
   * Whether those may be answered from them: not where a change must be refused (a failed
   * journal, a stopping mount) or where each answer must be durable (the immediate sync policy).
   * Off until allowed.
   */
  allowUnchanged(on: boolean): void;
  /** Clears, stops answering and lets another mount of this process claim them. */
  release(): void;
}

/** Makes the binding answer the requests of the mount whose native state is `thread` (none: null). */
function bindAttrs(thread: Buffer | null): void {
  nativeAddon.fuse_native_attrs_bind(thread);
}

let attrsClaimed = false;

/** The binding's attribute answers, for one mount per process: null when another mount holds them. */
export function claimBindingAttrs(): BindingAttrs | null {
  if (attrsClaimed) return null;
  attrsClaimed = true;
  let released = false;
  return {
    put: (path, stat, complete = false) => {
      if (!released) nativeAddon.fuse_native_attrs_put(path, statInts(stat), complete);
    },
    // Once released, the table may be another mount's: a late handler of this one must not touch it.
    clear: () => {
      if (!released) nativeAddon.fuse_native_attrs_clear();
    },
    drop: (path) => {
      if (!released) nativeAddon.fuse_native_attrs_drop(path);
    },
    forget: (path) => {
      if (!released) nativeAddon.fuse_native_attrs_forget(path);
    },
    hits: () => nativeAddon.fuse_native_attrs_hits(),
    absent: () => nativeAddon.fuse_native_attrs_absent(),
    unchanged: () => {
      const [chown, chmod] = nativeAddon.fuse_native_attrs_unchanged();
      return { chown, chmod };
    },
    allowUnchanged: (on) => {
      if (!released) nativeAddon.fuse_native_attrs_unchanged_allow(on);
    },
    release: () => {
      if (released) return;
      released = true;
      bindAttrs(null);
      attrsClaimed = false;
    },
  };
}

/** What the binding answered of fsync(2) and fsyncdir since the last take (BindingSync). */
export interface SyncAnswers {
  fsync: { ok: number; failed: number };
  fsyncdir: { ok: number; failed: number };
  /** How long each answer took (up to 16,384 between two takes; beyond that only counted). */
  samples: { op: 'fsync' | 'fsyncdir'; seconds: number; failed: boolean }[];
}

/**
 * fsync(2) and fsyncdir answered in the binding's FUSE thread with an fdatasync of the journal
 * files handed to it, without a round trip to JS (FUSE.md "fsync answered in the binding"): the
 * journal hands it its files and allows it where that is correct (OutsideSync).
 */
export interface BindingSync extends OutsideSync {
  /** What it answered since the last call, for the metrics. */
  takeAnswers(): SyncAnswers;
  /** The mount whose requests it answers (FuseMount, once mounted: its native state). */
  attach(thread: Buffer | null): void;
  /** Stops answering, takes every file back and lets another mount of this process claim it. */
  release(): void;
}

let syncClaimed = false;

/** The binding's fsync answers, for one mount per process: null when another mount holds them. */
export function claimBindingSync(): BindingSync | null {
  if (syncClaimed) return null;
  syncClaimed = true;
  nativeAddon.fuse_native_sync_reset();
  let released = false;
  let thread: Buffer | null = null;
  let allowed = false;
  const files = new Set<number>();
  const bind = (): void => nativeAddon.fuse_native_sync_bind(!released && allowed && thread ? thread : null);
  const empty = (): SyncAnswers => ({ fsync: { ok: 0, failed: 0 }, fsyncdir: { ok: 0, failed: 0 }, samples: [] });
  const take = (): SyncAnswers => {
    const a = empty();
    const t = nativeAddon.fuse_native_sync_take();
    a.fsync = { ok: t[0]!, failed: t[1]! };
    a.fsyncdir = { ok: t[2]!, failed: t[3]! };
    for (let i = 4; i + 1 < t.length; i += 2) a.samples.push({ seconds: t[i]!, op: t[i + 1]! & 1 ? 'fsyncdir' : 'fsync', failed: t[i + 1]! >= 2 });
    return a;
  };
  let left = empty();
  return {
    add: (fd) => {
      if (released) return false;
      files.add(fd);
      return nativeAddon.fuse_native_sync_file(fd, true);
    },
    remove: (fd) => {
      if (files.delete(fd)) nativeAddon.fuse_native_sync_file(fd, false);
    },
    allow: (on) => {
      allowed = on;
      bind();
    },
    takeAnswers: () => {
      // After the release the binding's figures may be another mount's: what was left is kept.
      if (released) {
        const last = left;
        left = empty();
        return last;
      }
      return take();
    },
    attach: (t) => {
      thread = t;
      bind();
    },
    release: () => {
      if (released) return;
      released = true;
      bind();
      for (const fd of files) nativeAddon.fuse_native_sync_file(fd, false);
      files.clear();
      left = take();
      syncClaimed = false;
    },
  };
}

/** Test seam: the next fdatasync the binding runs for an fsync(2) fails with errno `e`. */
export function failNextBindingSync(e: number): void {
  nativeAddon.fuse_native_sync_fail_next(e);
}

/** Test seam: the descriptors the binding fdatasyncs now. */
export function bindingSyncFiles(): number[] {
  return nativeAddon.fuse_native_sync_files();
}

const TWO_32 = 2 ** 32;
const ms = (t: Date | number): number => (typeof t === 'number' ? t : t.getTime());

/** A stat as the binding's getattr reply carries it (fuse-native's getStatArray, with the same defaults). */
export function statInts(st: FuseStat): Buffer {
  const ints = new Uint32Array(19);
  // Two's-complement 64 bits: a time before 1970 is negative (the patched binding reads times signed).
  const wide = (at: number, n: number): void => {
    const high = Math.floor(n / TWO_32);
    ints[at] = n - high * TWO_32;
    ints[at + 1] = high;
  };
  ints[0] = st.mode;
  ints[1] = st.uid ?? 0;
  ints[2] = st.gid ?? 0;
  wide(3, st.size);
  ints[5] = st.dev ?? 0;
  // 0 stays 0: a file open here after its last name went (fstat(2) answers 0 on a local disk).
  ints[6] = st.nlink ?? 1;
  ints[7] = (st.ino ?? 0) % TWO_32;
  // The patched binding takes the high half of st_ino last (bridge mounts number from mountNo x 2^32).
  ints[18] = Math.floor((st.ino ?? 0) / TWO_32);
  ints[8] = st.rdev ?? 0;
  ints[9] = st.blksize ?? 0;
  wide(10, st.blocks ?? 0);
  wide(12, ms(st.atime));
  wide(14, ms(st.mtime));
  wide(16, ms(st.ctime));
  return Buffer.from(ints.buffer);
}

const FH_MAX = 2 ** 31 - 1;
/** What a failed getattr hands back (the binding reads the integers whatever the result). */
const NO_STAT = Buffer.alloc(19 * 4);

/**
 * fuse-native's class with what 2.2.6 gets wrong or leaves out put right in JS: any libfuse
 * option, the open flags on create and opendir, and xattr replies bounded by the caller's buffer.
 */
class PatchedFuse extends NativeFuse {
  private readonly optionString: string;

  constructor(mnt: string, ops: NativeOps, optionString: string) {
    // No watchdog: backpressure holds writers longer than fuse-native's 15 s on purpose.
    super(mnt, ops, { timeout: false });
    this.optionString = optionString;
  }

  _fuseOptions(): string {
    return this.optionString;
  }

  _op_create(signal: Signal, path: string, mode: number, flags: number): void {
    (this.ops.create as (p: string, m: number, f: number, cb: NativeCallback) => void)(path, mode, flags, (err, fh) => signal(err as number, fh));
  }

  /** The patched binding says whether the kernel asks for a node it holds or looks a name up. */
  _op_getattr(signal: Signal, path: string, ofNode: boolean): void {
    const getattr = this.ops.getattr as ((p: string, n: boolean, cb: NativeCallback) => void) | undefined;
    // Without a handler, as fuse-native: the root is an empty directory, anything else EPERM.
    if (!getattr) return void (path === '/' ? signal(0, statInts({ mode: 0o40755, size: 4096, atime: 0, mtime: 0, ctime: 0 })) : signal(Errno.EPERM, NO_STAT));
    getattr(path, ofNode === true, (err, stat) => signal(err as number, err ? NO_STAT : statInts(stat as FuseStat)));
  }

  /** The patched binding adds whether the request is a RENAME (or an UNLINK libfuse hides the file for). */
  _op_rename(signal: Signal, from: string, to: string, forRename: boolean): void {
    (this.ops.rename as (f: string, t: string, r: boolean, cb: NativeCallback) => void)(from, to, forRename === true, (err) => signal(err as number));
  }

  /** The patched binding passes 64-bit offset and length as two uint32s each. */
  _op_fallocate(signal: Signal, path: string, fh: number, mode: number, offLow: number, offHigh: number, lenLow: number, lenHigh: number): void {
    (this.ops.fallocate as (p: string, f: number, m: number, o: number, l: number, cb: NativeCallback) => void)(path, fh, mode, offLow + offHigh * TWO_32, lenLow + lenHigh * TWO_32, (err) => signal(err as number));
  }

  /** The patched binding adds whether the write is the kernel's page writeback. */
  _op_write(signal: Signal, path: string, fh: number, buf: Buffer, len: number, offsetLow: number, offsetHigh: number, writepage: boolean): void {
    (this.ops.write as (p: string, f: number, b: Buffer, l: number, o: number, w: boolean, cb: NativeCallback) => void)(path, fh, buf, len, offsetLow + offsetHigh * TWO_32, writepage === true, (err, n) => signal(err as number, (n as number) || 0, buf.buffer));
  }

  /** The binding passes (path, fh, flags); 2.2.6 handed fh over as the flags. */
  _op_opendir(signal: Signal, path: string, _fh: number, flags: number): void {
    (this.ops.opendir as (p: string, f: number, cb: NativeCallback) => void)(path, flags, (err, fh) => signal(err as number, fh));
  }

  /** 2.2.6 copies any length and answers it, past a too-small buffer; ERANGE is the answer. */
  _op_getxattr(signal: Signal, path: string, name: string, valueBuf: Buffer, _position: number): void {
    (this.ops.getxattr as (p: string, n: string, cb: NativeCallback) => void)(path, name, (err, value) => {
      if (err !== 0) return signal(err as number, valueBuf.buffer);
      const v = value as Buffer;
      if (valueBuf.length > 0 && v.length > valueBuf.length) return signal(Errno.ERANGE, valueBuf.buffer);
      if (valueBuf.length > 0) v.copy(valueBuf);
      return signal(v.length, valueBuf.buffer);
    });
  }

  _op_listxattr(signal: Signal, path: string, listBuf: Buffer): void {
    (this.ops.listxattr as (p: string, cb: NativeCallback) => void)(path, (err, list) => {
      if (err !== 0) return signal(err as number, listBuf.buffer);
      const packed = Buffer.concat((list as string[]).map((n) => Buffer.from(`${n}\0`)));
      if (listBuf.length > 0 && packed.length > listBuf.length) return signal(Errno.ERANGE, listBuf.buffer);
      if (listBuf.length > 0) packed.copy(listBuf);
      return signal(packed.length, listBuf.buffer);
    });
  }
}

// ---- adapting async handlers to fuse-native's callbacks ------------------------------------

function checkFh(fh: number | void): number {
  if (fh === undefined) return 0;
  if (!Number.isInteger(fh) || fh < 1 || fh > FH_MAX) throw new RangeError(`file handle must be an integer from 1 to ${FH_MAX}, got ${fh}`);
  return fh;
}

function checkCount(n: number, length: number): number {
  if (!Number.isInteger(n) || n < 0 || n > length) throw new RangeError(`byte count must be an integer from 0 to ${length}, got ${n}`);
  return n;
}

/** Builds fuse-native's callback-style ops from async handlers; `fail` turns an error into an errno. */
function nativeOps(h: FuseHandlers, fail: (op: FuseOpName, err: unknown) => number, onRequest: () => void, requestHandle: () => object | null): NativeOps {
  const ops: NativeOps = {};
  // The one place a handler's promise becomes fuse-native's callback; `ok` shapes the success
  // arguments (0 and a value, or a byte count alone for read and write). The callback runs once.
  const adapt = <A extends unknown[], R>(op: FuseOpName, fn: ((...a: A) => Promise<R>) | undefined, ok: (r: R) => unknown[]): void => {
    if (fn === undefined) return;
    ops[op] = (...args: unknown[]) => {
      const cb = args.pop() as NativeCallback;
      const request = requestHandle();
      onRequest();
      Promise.resolve()
        .then(() => runAs(request, () => fn(...(args as unknown as A))))
        .then(ok)
        .then((out) => cb(...out), (err: unknown) => cb(fail(op, err)));
    };
  };
  const none = (): unknown[] => [0];
  const handle = (fh: number | void): unknown[] => [0, checkFh(fh)];
  const value = (v: unknown): unknown[] => [0, v];
  const entries = (e: FuseDirEntries): unknown[] => ('names' in e ? [0, e.names, e.stats] : [0, e, []]);
  const bool = (n: number): boolean => n !== 0;

  const { fsyncdir, fsync, utimens, setxattr, getxattr, read, write } = bound(h);
  type Io = (p: string, fh: number, buf: Buffer, len: number, pos: number, pageWriteback?: boolean) => Promise<number>;
  const io = (fn: Io | undefined): Io | undefined => fn && (async (p, fh, buf, len, pos, wb) => checkCount(await fn(p, fh, buf, len, pos, wb), len));
  adapt('getattr', h.getattr?.bind(h), value);
  adapt('fgetattr', h.fgetattr?.bind(h), value);
  adapt('access', h.access?.bind(h), none);
  adapt('statfs', h.statfs?.bind(h), value);
  adapt('opendir', h.opendir?.bind(h), handle);
  adapt('readdir', h.readdir?.bind(h), entries);
  adapt('releasedir', h.releasedir?.bind(h), none);
  adapt('fsyncdir', fsyncdir && ((p: string, d: number, fh: number) => fsyncdir(p, bool(d), fh)), none);
  adapt('open', h.open?.bind(h), handle);
  adapt('create', h.create?.bind(h), handle);
  adapt('read', io(read), (n) => [n]);
  adapt('write', io(write), (n) => [n]);
  adapt('flush', h.flush?.bind(h), none);
  adapt('release', h.release?.bind(h), none);
  adapt('fsync', fsync && ((p: string, d: number, fh: number) => fsync(p, bool(d), fh)), none);
  adapt('truncate', h.truncate?.bind(h), none);
  adapt('ftruncate', h.ftruncate?.bind(h), none);
  adapt('fallocate', h.fallocate?.bind(h), none);
  adapt('unlink', h.unlink?.bind(h), none);
  adapt('rename', h.rename?.bind(h), none);
  adapt('link', h.link?.bind(h), none);
  adapt('symlink', h.symlink?.bind(h), none);
  adapt('readlink', h.readlink?.bind(h), value);
  adapt('mkdir', h.mkdir?.bind(h), none);
  adapt('rmdir', h.rmdir?.bind(h), none);
  adapt('mknod', h.mknod?.bind(h), none);
  adapt('chmod', h.chmod?.bind(h), none);
  adapt('chown', h.chown?.bind(h), none);
  adapt('utimens', utimens && ((p: string, a: number, m: number) => utimens(p, utimeArg(a), utimeArg(m))), none);
  adapt('setxattr', setxattr && ((p: string, n: string, v: Buffer, _pos: number, f: number) => setxattr(p, n, v, f)), none);
  adapt('getxattr', getxattr, (v: Buffer | null) => (v === null ? [Errno.ENODATA] : [0, v]));
  adapt('listxattr', h.listxattr?.bind(h), value);
  adapt('removexattr', h.removexattr?.bind(h), none);
  return ops;
}

/** The handlers whose arguments need converting, bound to their object. */
function bound(h: FuseHandlers) {
  return {
    fsyncdir: h.fsyncdir?.bind(h),
    fsync: h.fsync?.bind(h),
    utimens: h.utimens?.bind(h),
    setxattr: h.setxattr?.bind(h),
    getxattr: h.getxattr?.bind(h),
    read: h.read?.bind(h),
    write: h.write?.bind(h),
  };
}

// ---- the mount -------------------------------------------------------------------------------

export type FuseMountState = 'idle' | 'mounting' | 'mounted' | 'unmounting' | 'unmounted' | 'failed';

/**
 * One FUSE mount. Never mount in a process that also makes synchronous file calls on the same
 * mount: every request runs on this process's event loop, so such a call deadlocks it.
 */
export class FuseMount {
  readonly mountpoint: string;
  private readonly native: PatchedFuse;
  private readonly checks: MountpointCheckOptions;
  private readonly attrs: BindingAttrs | null;
  private readonly sync: BindingSync | null;
  private readonly readaheadKib: number | undefined;
  private stateNow: FuseMountState;

  constructor(mountpoint: string, handlers: FuseHandlers, options: FuseMountOptions = {}, hooks: FuseMountHooks & MountpointCheckOptions = {}) {
    this.mountpoint = resolve(mountpoint);
    const report = hooks.onHandlerError ?? defaultHandlerErrorReport;
    const fail = (op: FuseOpName, err: unknown): number => {
      const errno = errnoOf(err);
      if (errno !== undefined) return errno;
      report(op, err);
      return Errno.EIO;
    };
    // The request a handler is called for, read while the binding calls it (the patched index.js).
    const requestHandle = (): object | null => (this.native as unknown as { _requestHandle?: object | null })._requestHandle ?? null;
    this.native = new PatchedFuse(this.mountpoint, nativeOps(handlers, fail, requestHook(hooks), requestHandle), fuseOptionString(options));
    setInterruptSource(() => nativeAddon.fuse_native_take_interrupts());
    this.checks = { statTimeoutMs: hooks.statTimeoutMs, create: hooks.create };
    this.readaheadKib = options.readaheadKib;
    this.attrs = hooks.bindingAttrs ?? null;
    this.sync = hooks.bindingSync ?? null;
    this.stateNow = 'idle';
  }

  get state(): FuseMountState {
    return this.stateNow;
  }

  /**
   * Checks the mount point (cleaning a stale mount left by a dead process; refusing a missing,
   * non-empty or busy one with MOUNT_* errors), then mounts and resolves once the kernel is served.
   * `readaheadUnset` says why the readahead asked for could not be set (the mount works without).
   */
  async mount(): Promise<{ staleCleaned: boolean; readaheadUnset?: string }> {
    if (this.stateNow !== 'idle') throw new Error(`FuseMount.mount: state is ${this.stateNow}, expected idle`);
    this.stateNow = 'mounting';
    try {
      const prepared = await prepareMountpoint(this.mountpoint, this.checks);
      await new Promise<void>((res, rej) => this.native.mount((err) => (err ? rej(err) : res())));
      if (this.attrs) bindAttrs(this.native._thread);
      this.sync?.attach(this.native._thread);
      this.stateNow = 'mounted';
      if (this.readaheadKib === undefined) return prepared;
      try {
        await setMountReadahead(this.mountpoint, this.readaheadKib);
        return prepared;
      } catch (err) {
        return { ...prepared, readaheadUnset: (err as Error).message };
      }
    } catch (err) {
      this.attrs?.release();
      this.sync?.release();
      this.stateNow = 'failed';
      if (err instanceof AetherError) throw err;
      throw new AetherError('MOUNT_FAILED', `mounting ${this.mountpoint} failed: ${(err as Error).message}`, { cause: err, context: { mountpoint: this.mountpoint } });
    }
  }

  /**
   * True once libfuse's loop has ended while mounted: the kernel ended the session (unmounted by
   * someone else, and no longer used: `umount -l` ends it only when the last user is gone).
   */
  get sessionOver(): boolean {
    return this.stateNow === 'mounted' && nativeAddon.fuse_native_session_over();
  }

  /** Lazily unmounts (fusermount -u -z) and lets the FUSE thread go. */
  async unmount(): Promise<void> {
    if (this.stateNow !== 'mounted') throw new Error(`FuseMount.unmount: state is ${this.stateNow}, expected mounted`);
    this.stateNow = 'unmounting';
    try {
      await new Promise<void>((res, rej) => this.native.unmount((err) => (err ? rej(err) : res())));
      this.attrs?.release();
      this.sync?.release();
      this.stateNow = 'unmounted';
    } catch (err) {
      this.stateNow = 'mounted';
      throw new AetherError('UNMOUNT_FAILED', `unmounting ${this.mountpoint} failed: ${(err as Error).message}`, { cause: err, context: { mountpoint: this.mountpoint } });
    }
  }
}

function requestHook(hooks: FuseMountHooks): () => void {
  const spin = new LoopSpin(BigInt(Math.round((hooks.loopSpinMicros ?? 0) * 1000)));
  const told = hooks.onRequest;
  return told
    ? () => {
        spin.poke();
        told();
      }
    : () => spin.poke();
}

function defaultHandlerErrorReport(op: FuseOpName, err: unknown): void {
  console.error(`aether: FUSE ${op} handler failed, answered EIO: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
}
