import { applyOp, NAME_MAX_BYTES, nodeOf, TreeError, type Errno } from '../tree/apply.js';
import { kindOfMode, typeBits, type Inode } from '../tree/inode.js';
import type { MemoryMeta } from '../tree/meta.js';
import { encodeOp, OP_RECORD_TYPE, ROOT_INO, type Ino, type Kind, type Op } from '../tree/ops.js';
import type { Clock } from '../runtime/infra/clock.js';
import type { CachePort, GatePort, JournalPort } from './ports.js';
import { interruptible } from './interrupts.js';
import { SettleWatermark } from './settle-watermark.js';

export type FsErrno = Errno | 'EBADF' | 'ENOSPC' | 'EIO' | 'EACCES' | 'ENOTSUP' | 'EROFS' | 'EFBIG';

/**
 * A failed file system operation, carrying the errno FUSE answers with. An expected answer, not a
 * fault: it carries no stack trace (capturing one made a lookup of a missing name cost 20 µs in
 * the handler instead of 4, and builds look up many).
 */
export class FsError extends Error {
  /** Same as `errno`, named like Node's fs errors so the FUSE binding answers with it. */
  readonly code: FsErrno;
  constructor(readonly errno: FsErrno, message: string) {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(`${errno}: ${message}`);
    Error.stackTraceLimit = limit;
    this.name = 'FsError';
    this.code = errno;
  }
}

const O_ACCMODE = 3;
const O_WRONLY = 1;
const O_RDWR = 2;
const O_TRUNC = 0o1000;
const O_APPEND = 0o2000;
const S_ISGID = 0o2000;

/** Largest file offset accepted (the kernel's MAX_LFS_FILESIZE is larger; 2^53 keeps sizes exact in JS). */
export const MAX_FILE_BYTES = Number.MAX_SAFE_INTEGER;

/** libfuse's high-level API renames an unlinked-but-open file to such a name (`.fuse_hidden%08x%08x`) instead of removing it. */
const HIDDEN_NAME = /^\.fuse_hidden[0-9a-f]{16}$/;
/** How long after the last change refused for a full disk the mount says there is room again. */
const ROOM_AGAIN_QUIET_MS = 5000;
/** fallocate(2): allocate without changing the size. */
const FALLOC_FL_KEEP_SIZE = 0x01;

/** The deepest of `moved` (inode → old path) that `path` lies under, and the rest of `path` below it. */
function underMoved(path: string, moved: ReadonlyMap<Ino, string>): { ino: Ino; rest: string } | undefined {
  let best: { ino: Ino; from: string } | undefined;
  for (const [ino, from] of moved) {
    if ((path === from || path.startsWith(`${from}/`)) && (!best || from.length > best.from.length)) best = { ino, from };
  }
  return best && { ino: best.ino, rest: path.slice(best.from.length) };
}

interface Handle {
  ino: Ino;
  flags: number;
  /** The name libfuse holds it under: the path it was opened by, moved by every rename here since. */
  path: string;
}

export interface ContentSource {
  /**
   * Committed content of `ino` (the embedded store or the replica of the hub's tree), copied into
   * `target` at `at`; returns the bytes the file has in the range.
   */
  readInto(ino: Ino, offset: number, length: number, target: Buffer, at: number): number;
}

export interface VfsDeps {
  view: MemoryMeta;
  committed: ContentSource;
  journal: JournalPort;
  cache: CachePort;
  gate: GatePort;
  clock: Clock;
  /** Highest inode number ever used; new ones count up from here. */
  maxIno: number;
  log: (line: string) => void;
  /** Told when an inode has a second kernel inode that its link count does not show (a hidden name). */
  attributesUncached?: (ino: Ino, on: boolean) => void;
  /**
   * Put committed data read from `committed` into the cache (default true). Local mode says no:
   * its committed source is the store on the same disk, so a second copy would only cost writes.
   */
  cacheReads?: boolean;
  /** Told of every journaled change as it is made (and as it is replayed at a start), with its seq. */
  localOp?: (op: Op, seq: number) => void;
  /**
   * The committed tree may have moved on since the journal's entries were made (bridge mode: the
   * replica follows other mounts): an entry that no longer applies is replayed as far as it can.
   */
  replayOnMovedTree?: boolean;
  /** True while the backend still needs a nameless inode (bridge mode: changes to ship from it). */
  holdInode?: (ino: Ino) => boolean;
  /** Told when the last handle of an inode is released. */
  closed?: (ino: Ino) => void;
  /**
   * Moves libfuse's node for `path` to a hidden name in its directory and returns that name
   * ('busy': a request holds the node, try again; undefined: libfuse has no node for it). Bridge
   * mode: `hideReplacedOpen`.
   */
  hideNode?: (path: string) => string | 'busy' | undefined;
  /** Gives libfuse's nodes for paths other names, all at once (bridge mode: `moveNodes`). */
  moveNodes?: (moves: [from: string, to: string, isDir: boolean][]) => ('moved' | 'busy' | undefined)[];
  /** Drops the kernel's cached pages and attributes of the nodes for these paths (bridge mode). */
  invalidateNodes?: (paths: string[]) => number;
}

export type TimeSpec = number | 'now' | 'omit';

export interface DirEntry {
  name: string;
  ino: Ino;
  kind: Kind;
}

/**
 * The file system's logic, independent of FUSE: path resolution, handles and the write path
 * (gate → dirty quota → journal append → cache update). Every mutation is applied to the
 * in-memory view first (so its POSIX checks run once, synchronously, in order) and then journaled.
 */
export class Vfs {
  private readonly handles = new Map<number, Handle>();
  /**
   * Directories another mount renamed whose libfuse node a request held: the name libfuse still
   * gives them, and so the start of every path it makes through them (resolve).
   */
  private readonly movesPending = new Map<Ino, string>();
  private moveRetry: NodeJS.Timeout | undefined;
  private moveRetryMs = 5;
  private readonly openCount = new Map<Ino, number>();
  /**
   * Hidden names of unlinked-but-open files (never journaled, never listed), by name alone: libfuse
   * makes each unique (`.fuse_hidden<node id><generation>`), and it reaches the file by a path
   * through directories that may since have been renamed, or removed by another mount.
   */
  private readonly hidden = new Map<string, { ino: Ino; dir: Ino; byUs?: true }>();
  /** The name libfuse hid in the first half of a rename over it (the second half comes next). */
  private justHidden: { parent: Ino; name: string; ino: Ino } | undefined;
  /**
   * Pending truncations, one per journal entry: committed content at or past `size` (the new size
   * or the size before, whichever is smaller) is stale until entry `seq` is committed, so reads
   * there see zeros (or newer dirty data) instead. Each goes when its own entry commits: a file
   * truncated, written and truncated again reads the committed write once the first truncation
   * and the write are committed, while the second is still pending.
   */
  private readonly truncFloors = new Map<Ino, { size: number; seq: number }[]>();
  /**
   * Files whose cache update failed after the write was acknowledged: the cache forgot them, so
   * their reads fail with EIO until the journal is committed past `seq` and the store has it all.
   */
  private readonly poisoned = new Map<Ino, number>();
  /** Cache updates run behind the replies; the journal commits no entry before its update ran. */
  private readonly cacheOps = new SettleWatermark();
  private nextFh = 1;
  private maxIno: number;
  private writesStopped = false;
  /** The last change was refused for want of disk space (logged once per spell). */
  /** While the journal's disk is full: since when, the changes refused, the last refusal. */
  private noRoom: { since: number; refused: number; last?: number } | undefined;
  private hideRetry: NodeJS.Timeout | undefined;

  constructor(private readonly d: VfsDeps) {
    this.maxIno = d.maxIno;
    d.cache.onDataLost((ino, err) => this.cacheFailed(ino, d.journal.lastSeq, err));
    d.cache.onWriteBehindStall?.((err, held) =>
      d.log(err === null ? 'cache write-behind works again' : `cache write-behind failed; written data stays readable in memory (${held} bytes now) and is written once the disk takes it: ${String(err)}`),
    );
    d.journal.holdCommits?.((seq) => this.cacheOps.through(seq));
  }

  /** A cache update of journal entry `seq`, not awaited: a failure makes the file unreadable. */
  private behind(ino: Ino, seq: number, p: Promise<unknown>): void {
    this.cacheOps.track(seq, p.catch((err: unknown) => this.cacheFailed(ino, seq, err)));
  }

  private now(): number {
    return this.d.clock.now();
  }

  // ---- resolution ----

  private split(path: string): string[] {
    return path.split('/').filter((p) => p !== '');
  }

  resolve(path: string): Ino {
    const hid = this.hiddenAt(path);
    if (hid !== undefined) return hid;
    // Under a directory whose move waits for a request (moveNodes), libfuse's paths still have
    // the old name: a shell or build in it got ENOENT for relative paths meanwhile (a review saw
    // 29 of 40 `cat`s fail while another mount renamed directories busy here).
    const pending = this.movesPending.size > 0 ? underMoved(path, this.movesPending) : undefined;
    return pending ? this.walk(pending.ino, pending.rest, path) : this.walk(ROOT_INO, path, path);
  }

  /** The inode at `rest` (a path) below directory `ino`; `path` names it in errors. */
  private walk(ino: Ino, rest: string, path: string): Ino {
    for (const part of this.split(rest)) {
      const dir = this.inode(ino);
      if (dir.kind !== 'dir') throw new FsError('ENOTDIR', `${path}: a component is not a directory`);
      const next = this.d.view.lookup(ino, part);
      if (next === undefined) {
        // No name that long can exist: POSIX answers ENAMETOOLONG for it, as for a creation.
        if (Buffer.byteLength(part) > NAME_MAX_BYTES) throw new FsError('ENAMETOOLONG', `${path}: a component is longer than ${NAME_MAX_BYTES} bytes`);
        throw new FsError('ENOENT', `${path}: no such file or directory`);
      }
      ino = next;
    }
    return ino;
  }

  /** The key in `hidden` for `path`, when it names a hidden file: its last component. */
  private hiddenKey(path: string): string | undefined {
    const name = path.slice(path.lastIndexOf('/') + 1);
    return this.hidden.size > 0 && HIDDEN_NAME.test(name) && this.hidden.has(name) ? name : undefined;
  }

  private hiddenAt(path: string): Ino | undefined {
    const key = this.hiddenKey(path);
    return key === undefined ? undefined : this.hidden.get(key)?.ino;
  }

  /**
   * True while `dir` holds the hidden name of an unlinked file that is still open: libfuse builds
   * the hidden file's path through `dir`, so a local rmdir of it is refused (FUSE.md).
   */
  holdsHidden(dir: Ino): boolean {
    for (const h of this.hidden.values()) if (h.dir === dir) return true;
    return false;
  }

  private parentAndName(path: string): { parent: Ino; name: string } {
    const parts = this.split(path);
    const name = parts.pop();
    if (name === undefined) throw new FsError('EEXIST', 'the root exists');
    const parent = this.resolve('/' + parts.join('/'));
    if (this.inode(parent).kind !== 'dir') throw new FsError('ENOTDIR', `${path}: parent is not a directory`);
    return { parent, name };
  }

  inode(ino: Ino): Inode {
    const i = this.d.view.getInode(ino);
    if (!i) throw new FsError('ENOENT', `inode ${ino} is gone`);
    return i;
  }

  getattr(path: string): Inode {
    const key = this.hiddenKey(path);
    const hid = key === undefined ? undefined : this.hidden.get(key);
    if (hid === undefined) return this.inode(this.resolve(path));
    // libfuse takes one off the nlink of a file it hid itself (it counts the hidden name as a
    // link); here the hidden name is no link, so it gets one more to take off. A name hidden here
    // (hideReplacedOpen) is no hidden node to libfuse: it takes nothing off (a link made here
    // showed 3 through such a descriptor).
    const inode = this.inode(hid.ino);
    return inode.nlink > 0 && !hid.byUs ? { ...inode, nlink: inode.nlink + 1 } : inode;
  }

  /** Bytes of the file that hold data (st_blocks): holes of a sparse file do not count. */
  allocatedBytes(ino: Ino): number {
    return this.d.view.allocatedBytes(ino);
  }

  fgetattr(fh: number): Inode {
    return this.inode(this.handle(fh).ino);
  }

  /** `.`, `..` and the directory's names, each with its inode and kind (readdir's d_ino and d_type). */
  readdir(path: string): DirEntry[] {
    const ino = this.resolve(path);
    if (this.inode(ino).kind !== 'dir') throw new FsError('ENOTDIR', `${path} is not a directory`);
    const view = this.d.view;
    const out: DirEntry[] = [
      { name: '.', ino, kind: 'dir' },
      { name: '..', ino: view.parentOf(ino) ?? ino, kind: 'dir' },
    ];
    for (const [name, child] of view.entries(ino) ?? []) {
      const kind = view.getInode(child)?.kind;
      if (kind !== undefined) out.push({ name, ino: child, kind });
    }
    return out;
  }

  readlink(path: string): string {
    const i = this.getattr(path);
    if (i.kind !== 'symlink') throw new FsError('EINVAL', `${path} is not a symbolic link`);
    return i.target ?? '';
  }

  // ---- mutations ----

  /** Applies `op` to the view (POSIX checks included) and journals it; resolves once the journal policy is met. */
  private async mutate(op: Op): Promise<number> {
    const { seq, acked } = this.mutateAsync(op);
    await acked;
    return seq;
  }

  /**
   * Like `mutate`, but hands back the sequence number at once, for ops that update the cache.
   * `acked` follows the sync policy: under `immediate` it waits for the fsync; under `interval`
   * and `manual` for the record to be in the OS (the journal writes it in the same turn), so a
   * journal write that fails fails the operation instead of losing it unseen.
   */
  private mutateAsync(op: Op): { seq: number; acked: Promise<unknown>; payload: Buffer } {
    if (this.writesStopped && op.t !== 'forget') throw new FsError('EROFS', 'the mount is stopping');
    // Once a journal write has failed the journal refuses every record: refuse the op before it
    // changes the view, or the tree would show what the journal never got (until a restart).
    const failure = this.d.journal.failed;
    if (failure && op.t !== 'forget') throw failure;
    const payload = encodeOp(op);
    // A full disk refuses the change here, before the view has it; the journal goes on once there is room.
    if (op.t !== 'forget' && this.d.journal.hasRoom?.(payload.length) === false) {
      if (!this.noRoom) this.d.log('the journal\'s disk is full: changes are refused with ENOSPC until there is room again (nothing written before is lost)');
      this.noRoom ??= { since: this.now(), refused: 0 };
      this.noRoom.refused++;
      this.noRoom.last = this.now();
      throw new FsError('ENOSPC', 'no room on the state directory\'s disk for the journal');
    }
    // Said once the refusals have stopped for a while: small changes fit while large ones do not,
    // and the two lines alternated at every change (~40 a second, a review).
    if (this.noRoom && this.now() - (this.noRoom.last ?? 0) >= ROOM_AGAIN_QUIET_MS) {
      this.d.log(`the journal's disk has room again: changes are taken (${this.noRoom.refused} refused with ENOSPC in ${Math.round((this.noRoom.last! - this.noRoom.since) / 1000)} s)`);
      this.noRoom = undefined;
    }
    try {
      applyOp(this.d.view, op, { keepOrphans: true });
    } catch (err) {
      if (err instanceof TreeError) throw new FsError(err.errno, err.message);
      throw err;
    }
    // The payload is this op's own (encodeOp), never changed: the journal writes it without a copy.
    const appended = this.d.journal.append(OP_RECORD_TYPE, payload, { owned: true });
    const seq = this.d.journal.lastSeq;
    this.d.localOp?.(op, seq);
    return { seq, acked: appended, payload };
  }

  /** A cache update that failed after its journal append: never serve what the cache may have lost. */
  private cacheFailed(ino: Ino, seq: number, err: unknown): void {
    // The cache forgets the whole file, with the updates queued behind this one: every entry
    // journaled so far must be committed before the store alone answers.
    const until = Math.max(seq, this.d.journal.lastSeq);
    this.d.log(`cache update of inode ${ino} (journal entry ${seq}) failed, reads of it fail until entry ${until} is committed: ${String(err)}`);
    this.poisoned.set(ino, Math.max(until, this.poisoned.get(ino) ?? 0));
    // Tracked with `until`, at least every seq tracked so far: no commit overtakes the removal.
    this.cacheOps.track(until, this.d.cache.remove(ino).catch(() => undefined));
  }

  /**
   * Backpressure: data writes, truncations and attribute changes wait at the gate. Namespace
   * operations (create, mkdir, link, unlink, rmdir, rename) do not: the kernel holds the parent
   * directory's lock while they run, so holding one back would block `ls` and every lookup in that
   * directory, and reads must never wait.
   */
  private async admitWriter(): Promise<void> {
    // A program killed or interrupted meanwhile gets EINTR before anything is changed (interrupts.ts).
    if (!this.d.gate.isOpen) await interruptible((signal) => this.d.gate.admit(signal));
  }

  async mknode(path: string, kind: Kind, mode: number, uid: number, gid: number, target?: string): Promise<Ino> {
    const { parent, name } = this.parentAndName(path);
    if (kindOfMode(mode) === undefined) throw new FsError('ENOTSUP', 'only regular files, directories and symbolic links are supported');
    // A set-group-ID directory hands its group to new entries, and the bit to new directories (as Linux file systems do).
    const dir = this.inode(parent);
    if (dir.mode & S_ISGID) {
      gid = dir.gid;
      if (kind === 'dir') mode |= S_ISGID;
    }
    const ino = ++this.maxIno;
    await this.mutate({ t: 'mknode', parent, name, ino, kind, mode: mode & 0o7777, uid, gid, timeMs: this.now(), ...(target !== undefined ? { target } : {}) });
    return ino;
  }

  async link(existing: string, path: string): Promise<void> {
    const ino = this.resolve(existing);
    const { parent, name } = this.parentAndName(path);
    await this.mutate({ t: 'link', parent, name, ino, timeMs: this.now() });
    this.linksChanged(ino, existing);
  }

  async unlink(path: string): Promise<void> {
    const key = this.hiddenKey(path);
    const hid = key === undefined ? undefined : this.hidden.get(key)?.ino;
    if (key !== undefined && hid !== undefined) {
      // libfuse removes the hidden name on the last release: the inode can go now.
      this.hidden.delete(key);
      if (!this.hasHiddenName(hid)) this.d.attributesUncached?.(hid, false);
      this.forgetIfUnused(hid);
      return;
    }
    const { parent, name } = this.parentAndName(path);
    const ino = this.d.view.lookup(parent, name);
    const { acked } = this.mutateAsync({ t: 'unlink', parent, name, timeMs: this.now(), ...(ino !== undefined ? { ino } : {}) });
    // Before the ack: an inode left without name or user is forgotten in the same turn, so both
    // journal records go out in one write.
    if (ino !== undefined) {
      this.forgetIfUnused(ino);
      this.linksChanged(ino, path);
    }
    await acked;
  }

  async rmdir(path: string): Promise<void> {
    const { parent, name } = this.parentAndName(path);
    const dir = this.d.view.lookup(parent, name);
    if (dir !== undefined && this.holdsHidden(dir)) throw new FsError('ENOTEMPTY', `${path} holds an unlinked file that is still open`);
    await this.mutate({ t: 'rmdir', parent, name, timeMs: this.now(), ...(dir !== undefined ? { ino: dir } : {}) });
  }

  /**
   * `forRename`: the binding says the request is a RENAME (libfuse hides an open target by a
   * rename to a hidden name both for an unlink of it and just before a rename over it).
   */
  async rename(from: string, to: string, flags = 0, forRename = false): Promise<void> {
    await this.renameEntries(from, to, flags, forRename);
    // libfuse renames its nodes after every successful rename, hidings included: handles follow,
    // so that `openedAt` finds each open file by the name the kernel holds it under.
    const under = `${from}/`;
    for (const h of this.handles.values()) {
      if (h.path === from) h.path = to;
      else if (h.path.startsWith(under)) h.path = to + h.path.slice(from.length);
    }
  }

  private async renameEntries(from: string, to: string, flags: number, forRename: boolean): Promise<void> {
    const dst = this.parentAndName(to);
    const justHidden = this.justHidden;
    this.justHidden = undefined;
    // libfuse hides an unlinked file that is still open: for Aether that is an unlink whose inode lives on.
    // It hides a name it holds open only (a handle opened by it): a rename of any other file to
    // such a name is the user's own. The name may no longer name that file (another mount removed
    // or replaced it): then there is nothing to unlink, and the file only gains its hidden name.
    const hiding = HIDDEN_NAME.test(dst.name) ? this.heldOpenAt(from) : undefined;
    if (hiding !== undefined) {
      const ino = hiding;
      const { parent, name } = this.parentAndName(from);
      // Hidden before a rename over it, the file keeps its name until that rename replaces it in
      // one step: removed here, the name was missing for other programs until the rename came
      // (opens got ENOENT while one program saved a file others read), and in bridge mode the
      // removal shipped on its own, to show the same gap on every other mount. A rename that then
      // fails leaves the file where it was, as rename(2) does.
      if (!forRename && this.d.view.lookup(parent, name) === ino) await this.unlink(from);
      this.hidden.set(dst.name, { ino, dir: dst.parent });
      // Its other names (if any) and the hidden one are separate kernel inodes from now on.
      this.d.attributesUncached?.(ino, true);
      // libfuse renames over the name it hid right after this (the hide is the first half of a rename).
      this.justHidden = { parent, name, ino };
      return;
    }
    const src = this.parentAndName(from);
    const replaced = this.d.view.lookup(dst.parent, dst.name);
    const moved = this.d.view.lookup(src.parent, src.name);
    if (replaced === undefined && moved !== undefined && justHidden?.ino === moved && justHidden.parent === dst.parent && justHidden.name === dst.name) {
      // A rename between two names of one file does nothing (POSIX), but libfuse hid the target,
      // an open name of the same file, before asking: the hidden name is given back.
      await this.mutate({ t: 'link', parent: dst.parent, name: dst.name, ino: moved, timeMs: this.now() });
      return;
    }
    // Two names of one file: POSIX says do nothing (libfuse may have hidden the target first).
    if (flags === 0 && moved !== undefined && moved === replaced) return;
    if (replaced !== undefined && moved !== undefined && this.inode(moved).kind === 'dir' && this.holdsHidden(replaced)) {
      throw new FsError('ENOTEMPTY', `${to} holds an unlinked file that is still open`);
    }
    const seen = moved !== undefined ? { ino: moved, dstIno: replaced ?? 0 } : {};
    await this.mutate({ t: 'rename', parent: src.parent, name: src.name, newParent: dst.parent, newName: dst.name, flags, timeMs: this.now(), ...seen });
    if (replaced !== undefined && replaced !== this.d.view.lookup(dst.parent, dst.name)) {
      this.forgetIfUnused(replaced);
      this.linksChanged(replaced, to);
    }
  }

  async setattr(path: string, change: { mode?: number; uid?: number; gid?: number; atime?: TimeSpec; mtime?: TimeSpec }): Promise<void> {
    // Not a directory's: the kernel holds its lock meanwhile, so a chmod held at the gate kept
    // every lookup and listing in it waiting, and reads never wait (nor do a directory's entries:
    // admitWriter). Its attributes are no data to hold back.
    if (this.inode(this.resolve(path)).kind !== 'dir') await this.admitWriter();
    const ino = this.resolve(path);
    const now = this.now();
    const time = (t: TimeSpec | undefined): number | undefined => (t === undefined || t === 'omit' ? undefined : t === 'now' ? now : t);
    const op: Op = { t: 'setattr', ino, timeMs: now };
    if (change.mode !== undefined) op.mode = change.mode & 0o7777;
    // chown(2) with -1 leaves that id alone.
    if (change.uid !== undefined && change.uid !== 0xffffffff && change.uid !== -1) op.uid = change.uid;
    if (change.gid !== undefined && change.gid !== 0xffffffff && change.gid !== -1) op.gid = change.gid;
    const atimeMs = time(change.atime);
    const mtimeMs = time(change.mtime);
    if (atimeMs !== undefined) op.atimeMs = atimeMs;
    if (mtimeMs !== undefined) op.mtimeMs = mtimeMs;
    await this.mutate(op);
  }

  async truncate(path: string, size: number): Promise<void> {
    await this.truncateIno(this.resolve(path), size);
  }

  async ftruncate(fh: number, size: number): Promise<void> {
    await this.truncateIno(this.handle(fh).ino, size);
  }

  /**
   * fallocate(2). Mode 0 makes the file at least `offset + length` long, the new part reading as
   * zeros (as ftruncate does; `freeBytes` tells what the disk has, and a growth past it is ENOSPC).
   * FALLOC_FL_KEEP_SIZE changes nothing. Punching holes, zeroing, collapsing and inserting ranges
   * answer EOPNOTSUPP (glibc's posix_fallocate asks only mode 0, and it falls back to writing
   * zeros where fallocate is refused). Without a handler fuse-native answered EOPNOTSUPP to all.
   */
  async fallocate(fh: number, mode: number, offset: number, length: number, freeBytes: () => number): Promise<void> {
    const ino = this.handle(fh).ino;
    if ((mode & ~FALLOC_FL_KEEP_SIZE) !== 0) throw new FsError('ENOTSUP', `fallocate mode 0x${mode.toString(16)} is not supported (only 0 and FALLOC_FL_KEEP_SIZE)`);
    if (offset < 0 || length <= 0) throw new FsError('EINVAL', 'fallocate needs offset >= 0 and length > 0');
    const end = offset + length;
    if (end > MAX_FILE_BYTES) throw new FsError('EFBIG', 'fallocate past the largest file size');
    await this.admitWriter();
    const inode = this.inode(ino);
    if (inode.kind === 'dir') throw new FsError('EISDIR', 'is a directory');
    if (mode & FALLOC_FL_KEEP_SIZE || end <= inode.size) return;
    if (end - inode.size > freeBytes()) throw new FsError('ENOSPC', `fallocate of ${end - inode.size} bytes more than the state directory's disk has free`);
    await this.resize(ino, end);
  }

  private async truncateIno(ino: Ino, size: number): Promise<void> {
    await this.admitWriter();
    await this.resize(ino, size);
  }

  /** The truncate op, once admitted at the write gate. */
  private async resize(ino: Ino, size: number): Promise<void> {
    if (size < 0) throw new FsError('EINVAL', 'negative size');
    if (size > MAX_FILE_BYTES) throw new FsError('EFBIG', 'size too large');
    const before = this.inode(ino);
    if (before.kind === 'dir') throw new FsError('EISDIR', 'is a directory');
    const sizeBefore = before.size;
    const { seq, acked } = this.mutateAsync({ t: 'truncate', ino, size, timeMs: this.now() });
    this.addFloor(ino, Math.min(size, sizeBefore), seq);
    this.behind(ino, seq, this.d.cache.truncate(ino, size));
    await acked;
  }

  // ---- handles and data ----

  /** True while libfuse keeps the inode under a hidden name (unlinked while open): a second kernel inode its link count does not show. */
  hasHiddenName(ino: Ino): boolean {
    for (const h of this.hidden.values()) if (h.ino === ino) return true;
    return false;
  }

  /**
   * The file libfuse holds open under `path` (a handle's name), if any: the one `path` names when
   * that is open by it, else the one last opened by it.
   */
  private heldOpenAt(path: string): Ino | undefined {
    let last: Ino | undefined;
    let named: Ino | undefined;
    for (const h of this.handles.values()) {
      if (h.path !== path) continue;
      last = h.ino;
      named ??= this.isNamed(path, h.ino) ? h.ino : undefined;
    }
    return named ?? last;
  }

  private isNamed(path: string, ino: Ino): boolean {
    try {
      return this.resolve(path) === ino;
    } catch (err) {
      if (err instanceof FsError) return false;
      throw err;
    }
  }

  /**
   * The inode of the file last opened by `path` that is still open, when `path` no longer names
   * it: the kernel holds that file under the name (libfuse's nodes are names) and asks for its
   * attributes by it, with no handle for fstat(2), after another mount removed the name.
   */
  openedAt(path: string): Ino | undefined {
    let found: Ino | undefined;
    for (const h of this.handles.values()) if (h.path === path && this.d.view.getInode(h.ino)) found = h.ino;
    return found;
  }

  /** The inode an open handle refers to, if the handle exists. */
  handleIno(fh: number): Ino | undefined {
    return this.handles.get(fh)?.ino;
  }

  private handle(fh: number): Handle {
    const h = this.handles.get(fh);
    if (!h) throw new FsError('EBADF', `bad file handle ${fh}`);
    return h;
  }

  private openIno(ino: Ino, flags: number, path: string): number {
    const fh = this.nextFh++;
    this.handles.set(fh, { ino, flags, path });
    this.openCount.set(ino, (this.openCount.get(ino) ?? 0) + 1);
    return fh;
  }

  async open(path: string, flags: number): Promise<number> {
    const ino = this.resolve(path);
    const inode = this.inode(ino);
    const writable = (flags & O_ACCMODE) === O_WRONLY || (flags & O_ACCMODE) === O_RDWR;
    if (inode.kind === 'dir' && writable) throw new FsError('EISDIR', `${path} is a directory`);
    const fh = this.openIno(ino, flags, path);
    if (flags & O_TRUNC && writable && inode.kind === 'file' && inode.size > 0) await this.truncateIno(ino, 0);
    return fh;
  }

  async create(path: string, mode: number, flags: number, uid: number, gid: number): Promise<number> {
    const ino = await this.mknode(path, 'file', mode | typeBits('file'), uid, gid);
    return this.openIno(ino, flags, path);
  }

  release(fh: number): void {
    const h = this.handles.get(fh);
    if (!h) return;
    this.handles.delete(fh);
    const n = (this.openCount.get(h.ino) ?? 1) - 1;
    if (n > 0) this.openCount.set(h.ino, n);
    else {
      this.openCount.delete(h.ino);
      // A hidden name given here (hideReplacedOpen), which libfuse does not unlink itself.
      let unhid = false;
      for (const [name, e] of this.hidden) if (e.ino === h.ino && e.byUs) unhid = this.hidden.delete(name);
      if (unhid && !this.hasHiddenName(h.ino)) this.d.attributesUncached?.(h.ino, false);
      this.d.closed?.(h.ino);
      this.forgetIfUnused(h.ino);
    }
  }

  /**
   * Another mount renamed these entries (bridge mode; [old path, new path, inode], as the view
   * had and has them around one changefeed batch): libfuse's nodes for them take the new names,
   * so a program whose working directory (or an open file) is under one goes on under the new
   * name, as on a local disk; libfuse's nodes are names, and under the old ones its relative
   * paths found nothing. All of a batch's moves at once: one by one, a swap moved a node back (a
   * review). A directory whose node a request holds is tried again, from the name libfuse still
   * gives it to where the view has it then, also after later batches. A node that cannot take its
   * new name is hidden, as is one libfuse had under it (FUSE.md).
   */
  moveNodes(moves: readonly (readonly [string, string, Ino])[]): void {
    if (!this.d.moveNodes) return;
    const batch: [string, string, Ino][] = [];
    for (const [from, to, ino] of moves) if (this.lookupPath(to) === ino) batch.push([this.movesPending.get(ino) ?? from, to, ino]);
    this.applyMoves(batch);
  }

  private applyMoves(batch: readonly [string, string, Ino][]): void {
    if (batch.length === 0 || !this.d.moveNodes) return;
    const isDir = (ino: Ino): boolean => this.d.view.getInode(ino)?.kind === 'dir';
    const results = this.d.moveNodes(batch.map(([from, to, ino]) => [from, to, isDir(ino)]));
    const moved: [string, string][] = [];
    batch.forEach(([from, to, ino], i) => {
      if (results[i] === 'moved') moved.push([from, to]);
      if (results[i] === 'busy' && isDir(ino)) this.movesPending.set(ino, from);
      else this.movesPending.delete(ino);
    });
    // Each handle by the deepest moved path it lies under, once: in a swap one's new path is another's old.
    for (const h of this.handles.values()) {
      let best: [string, string] | undefined;
      for (const m of moved) if ((h.path === m[0] || h.path.startsWith(`${m[0]}/`)) && (!best || m[0].length > best[0].length)) best = m;
      if (best) h.path = best[1] + h.path.slice(best[0].length);
    }
    if (moved.length > 0) this.moveRetryMs = 5;
    if (this.movesPending.size > 0 && !this.moveRetry) {
      // A request held the node (one at the backpressure gate may take minutes: the retries slow down to one a second).
      this.moveRetry = setTimeout(() => {
        this.moveRetry = undefined;
        this.moveRetryMs = Math.min(this.moveRetryMs * 2, 1000);
        const again: [string, string, Ino][] = [];
        for (const [ino, from] of this.movesPending) {
          const to = this.d.view.pathOfDir(ino);
          if (to === undefined || to === from) this.movesPending.delete(ino);
          else again.push([from, to, ino]);
        }
        this.applyMoves(again);
      }, this.moveRetryMs).unref();
    }
  }

  private lookupPath(path: string): Ino | undefined {
    try {
      return this.resolve(path);
    } catch (err) {
      if (err instanceof FsError) return undefined;
      throw err;
    }
  }

  /**
   * After another mount's changes (bridge mode): a file open here whose name, as libfuse holds it
   * (the handle's path), no longer names it. libfuse's nodes are names: when the name names
   * another file, the kernel would hold both files as one node and take the other file's size
   * for the open one, cutting reads through its descriptors short; when it names nothing (the
   * file, or its directory, removed or renamed by another mount), the next file made under it
   * here would join that node the same way (FUZZ_FDS seed 6105). The node goes under a hidden
   * name instead, as libfuse hides a file unlinked here while open, and its handles follow.
   */
  hideReplacedOpen(): void {
    if (!this.d.hideNode) return;
    for (const h of this.handles.values()) {
      if (this.hiddenKey(h.path) !== undefined || this.isNamed(h.path, h.ino)) continue;
      // Not a directory: the paths of the nodes under it go through its name, which a hidden one
      // would break (hidden names are found by their last component).
      if (this.d.view.getInode(h.ino)?.kind === 'dir') continue;
      // The directory libfuse builds the path through, if the view still has it (holdsHidden).
      let dir: Ino = 0;
      try {
        dir = this.resolve(h.path.slice(0, h.path.lastIndexOf('/')) || '/');
      } catch (err) {
        if (!(err instanceof FsError)) throw err;
      }
      const from = h.path;
      const name = this.d.hideNode(from);
      if (name === undefined) continue;
      // A request on the node (an unlink or a rename of it may be on its way here): after it.
      if (name === 'busy') {
        this.hideRetry ??= setTimeout(() => {
          this.hideRetry = undefined;
          this.hideReplacedOpen();
        }, 5).unref();
        continue;
      }
      this.hidden.set(name, { ino: h.ino, dir, byUs: true });
      const to = `${from.slice(0, from.lastIndexOf('/'))}/${name}`;
      for (const other of this.handles.values()) if (other.path === from) other.path = to;
      this.d.attributesUncached?.(h.ino, true);
    }
  }

  /**
   * Another mount changed these files (bridge mode; 'all': a snapshot changed anything): the
   * kernel forgets the attributes it cached for those open here (and for `paths`, their names),
   * so their descriptors read what the view holds now (FUSE.md: with auto_inval_data the pages
   * go when the mtime changed). A file opened later drops its pages at the open (auto_cache).
   */
  invalidateOpen(inos: ReadonlySet<Ino> | 'all', names: Iterable<string> = []): void {
    if (!this.d.invalidateNodes || (inos !== 'all' && inos.size === 0)) return;
    const paths = new Set<string>(names);
    for (const h of this.handles.values()) if (inos === 'all' || inos.has(h.ino)) paths.add(h.path);
    if (paths.size > 0) this.d.invalidateNodes([...paths]);
  }

  /**
   * A change here gave `ino` more or fewer names: the kernel forgets the attributes it cached for
   * the nodes that hold it open under another name than `path`, so fstat(2) through such a
   * descriptor shows the new link count at once, not after the attribute timeout. The kernel
   * updates only the node the change went through; another mount's rename leaves a file open here
   * under its old name, a kernel inode of its own (an unlink of the new name kept the descriptor's
   * link count at 1 for up to a second: the fuzzer's FUZZ_FDS seed 7732).
   */
  private linksChanged(ino: Ino, path: string): void {
    if (!this.d.invalidateNodes || !this.openCount.has(ino)) return;
    const paths = new Set<string>();
    for (const h of this.handles.values()) if (h.ino === ino && h.path !== path) paths.add(h.path);
    if (paths.size > 0) this.d.invalidateNodes([...paths]);
  }

  /**
   * Another mount removed these names or gave them to other files: the kernel forgets the
   * attributes it cached for the nodes libfuse has for them, so a `stat` or an open of such a name
   * asks again (and finds it gone, or the file holding it now) instead of answering from its cache
   * until the entry expires. Not the kernel's entries themselves: dropping one takes its
   * directory's lock, which a request waiting for JS may hold, and a mount killed meanwhile hung
   * for good (a review).
   */
  invalidateNames(paths: readonly string[]): void {
    if (this.d.invalidateNodes && paths.length > 0) this.d.invalidateNodes([...paths]);
  }

  /** An inode with no name and no open handle is gone: journal its end so its data is released. */
  private forgetIfUnused(ino: Ino): void {
    const inode = this.d.view.getInode(ino);
    if (!inode || inode.nlink > 0 || this.openCount.has(ino) || this.hasHiddenName(ino) || this.d.holdInode?.(ino)) return;
    const { seq, acked } = this.mutateAsync({ t: 'forget', ino });
    acked.catch(() => undefined);
    this.poisoned.delete(ino);
    this.truncFloors.delete(ino);
    this.cacheOps.track(seq, this.d.cache.remove(ino).catch(() => undefined));
  }

  /** The backend let go of `ino` (bridge mode: its changes are acknowledged): forgotten if nameless and closed. */
  forgetUnused(ino: Ino): void {
    // A directory is never forgotten this way (its entries would be orphaned): rmdir removes it.
    if (this.d.view.getInode(ino)?.kind !== 'dir') this.forgetIfUnused(ino);
  }

  isOpen(ino: Ino): boolean {
    return this.openCount.has(ino);
  }

  async read(fh: number, offset: number, length: number): Promise<Buffer> {
    return this.readIno(this.handle(fh).ino, offset, length);
  }

  /**
   * Reads into `target` (a FUSE request's buffer) and returns the byte count. Without clean
   * caching nothing keeps a view of the bytes, so they go straight into it: no buffer of their
   * own (fresh memory costs a page fault per 4 KiB) and no copy.
   */
  async readInto(fh: number, offset: number, length: number, target: Buffer): Promise<number> {
    const ino = this.handle(fh).ino;
    if (this.d.cacheReads !== false) {
      const data = await this.readIno(ino, offset, length);
      return data.copy(target);
    }
    return (await this.readIno(ino, offset, Math.min(length, target.length), target)).length;
  }

  /**
   * A file's whole current content (dirty data over committed), or undefined when it is no longer
   * a file: what a hub bridge ships as the file's block map.
   */
  async contentOf(ino: Ino): Promise<Buffer | undefined> {
    const inode = this.d.view.getInode(ino);
    if (inode?.kind !== 'file') return undefined;
    return this.readIno(ino, 0, inode.size);
  }

  /** `into`: read into it (only without clean caching: the cache would keep a view of it). */
  private async readIno(ino: Ino, offset: number, length: number, into?: Buffer): Promise<Buffer> {
    const inode = this.inode(ino);
    if (inode.kind !== 'file') throw new FsError('EISDIR', 'not a regular file');
    const end = Math.min(inode.size, offset + length);
    if (end <= offset) return Buffer.alloc(0);
    const poisonedUntil = this.poisoned.get(ino);
    if (poisonedUntil !== undefined) {
      if (this.d.journal.committedSeq < poisonedUntil) throw new FsError('EIO', `inode ${ino}: its cached data was lost; readable again once committed`);
      this.poisoned.delete(ino);
    }
    const { data, holes, token } = await this.d.cache.read(ino, offset, end - offset, into);
    // A cache update that failed while this read waited may have taken bytes the store lacks.
    const lostMeanwhile = this.poisoned.get(ino);
    if (lostMeanwhile !== undefined && this.d.journal.committedSeq < lostMeanwhile) throw new FsError('EIO', `inode ${ino}: its cached data was lost; readable again once committed`);
    const floor = this.floorOf(ino);
    for (const h of holes) {
      // Committed bytes at or past a pending truncation are stale: they read as zeros.
      const stop = Math.min(h.offset + h.length, floor ?? Infinity);
      if (stop <= h.offset) continue;
      const at = h.offset - offset;
      const got = this.d.committed.readInto(ino, h.offset, stop - h.offset, data, at);
      // The cache keeps a view of `data`, which nobody changes once it is returned.
      if (this.d.cacheReads !== false && floor === undefined && got === h.length) void this.d.cache.putClean(ino, h.offset, data.subarray(at, at + got), token).catch(() => undefined);
    }
    return data;
  }

  /**
   * `pageWriteback`: the kernel writes back pages of a shared mapping through this handle, at the
   * pages' offset: O_APPEND, which puts a write(2) at the end of the file, must not move them.
   */
  async write(fh: number, offset: number, data: Buffer, pageWriteback = false): Promise<number> {
    const h = this.handle(fh);
    if ((h.flags & O_ACCMODE) === 0) throw new FsError('EBADF', 'file not open for writing');
    await this.admitWriter();
    const inode = this.inode(h.ino);
    const at = h.flags & O_APPEND && !pageWriteback ? inode.size : offset;
    if (at + data.length > MAX_FILE_BYTES) throw new FsError('EFBIG', 'file too large');
    const reservation = this.d.cache.reserveDirty(h.ino, at, data.length);
    let op: { seq: number; acked: Promise<unknown>; payload: Buffer };
    try {
      op = this.mutateAsync({ t: 'write', ino: h.ino, offset: at, data, timeMs: this.now() });
    } catch (err) {
      reservation.release();
      throw err;
    }
    // `data` may be the kernel request's memory, gone once we reply: the cache gets the copy the
    // journal payload holds. Not awaited: the cache runs a file's operations in call order, so a
    // later read sees this write.
    const copy = op.payload.subarray(op.payload.length - data.length);
    this.behind(h.ino, op.seq, this.d.cache.write(h.ino, at, copy, op.seq, { reservation }));
    await op.acked;
    return data.length;
  }

  /** `fsync(2)`: the file's data is durable whatever the sync policy. */
  async fsync(): Promise<void> {
    await this.d.journal.flush();
  }

  /** Replays a journal entry not yet in the store (start-up): the view, the cache and the truncation floors. */
  async replay(seq: number, op: Op): Promise<void> {
    const sizeBefore = op.t === 'truncate' ? (this.d.view.getInode(op.ino)?.size ?? 0) : 0;
    try {
      applyOp(this.d.view, op, { keepOrphans: true });
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      // The mount checked every op before journaling it; in local mode a failure here means the
      // store and the journal disagree.
      if (!this.d.replayOnMovedTree || !(err instanceof TreeError)) throw new Error(`journal entry ${seq} does not apply to the stored tree: ${why}`);
      // Bridge mode: another mount changed the tree since (a name taken, a directory or file
      // removed). The entry still ships and the hub resolves it; a node made here stays, without
      // a name until the hub says where it went, so later entries replay onto it.
      // A write to a file gone from both (its kept version lost): nothing can carry its bytes.
      const lost = (op.t === 'write' || op.t === 'truncate') && !this.d.view.getInode(op.ino);
      this.d.log(
        lost
          ? `journal entry ${seq} (${op.t}) is for inode ${op.ino}, which neither the hub's tree nor this mount holds any longer: it cannot ship`
          : `journal entry ${seq} (${op.t}) no longer applies to the hub's tree as this mount has it (${why}); it ships as it is and the hub resolves it`,
      );
      if (op.t === 'mknode' && !this.d.view.getInode(op.ino)) this.d.view.putInode(nodeOf(op));
    }
    // Replayed changes are as unacknowledged as live ones (bridge mode notes them as such).
    this.d.localOp?.(op, seq);
    if (op.t === 'mknode') this.maxIno = Math.max(this.maxIno, op.ino);
    else if (op.t === 'write') await this.d.cache.write(op.ino, op.offset, op.data, seq, { replay: true });
    else if (op.t === 'truncate') {
      this.addFloor(op.ino, Math.min(op.size, sizeBefore), seq);
      await this.d.cache.truncate(op.ino, op.size);
    } else if (op.t === 'forget') {
      this.truncFloors.delete(op.ino);
      await this.d.cache.remove(op.ino);
    }
  }

  /** After a restart nothing is open: inodes left with no name are gone for good. */
  async forgetOrphans(): Promise<void> {
    const orphans = [...this.d.view.inodes.values()].filter((i) => i.nlink === 0 && i.kind !== 'dir').map((i) => i.ino);
    for (const ino of orphans) this.forgetIfUnused(ino);
  }

  /** Shutting down: every later mutation fails with EROFS; reads go on. */
  stopWrites(): void {
    this.writesStopped = true;
  }

  /** Called by the drain once the journal is committed up to `seq`. */
  committed(seq: number): void {
    for (const [ino, floors] of this.truncFloors) {
      const pending = floors.filter((f) => f.seq > seq);
      if (pending.length === 0) this.truncFloors.delete(ino);
      else if (pending.length < floors.length) this.truncFloors.set(ino, pending);
    }
  }

  private addFloor(ino: Ino, size: number, seq: number): void {
    const floors = this.truncFloors.get(ino);
    if (floors) floors.push({ size, seq });
    else this.truncFloors.set(ino, [{ size, seq }]);
  }

  /** Where committed content of `ino` stops being current (the lowest pending truncation), if anywhere. */
  private floorOf(ino: Ino): number | undefined {
    const floors = this.truncFloors.get(ino);
    if (!floors) return undefined;
    let min = Infinity;
    for (const f of floors) min = Math.min(min, f.size);
    return min;
  }

  get openHandles(): number {
    return this.handles.size;
  }
}
