import { constants } from 'node:fs';
import { mkdir, open, readdir, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from '../infra/crc32.js';
import type { Block } from './block.js';

const FANOUT = 256;

/** Block file name: `<fileId>-<blockIndex>-<generation>`, under a fan-out folder by generation. */
export function blockFileName(fileId: number, index: number, gen: number): string {
  return `${fileId}-${index}-${gen}`;
}

export function parseBlockFileName(name: string): { fileId: number; index: number; gen: number } | null {
  const m = /^(\d+)-(\d+)-(\d+)$/.exec(name);
  if (!m) return null;
  const [fileId, index, gen] = [Number(m[1]), Number(m[2]), Number(m[3])];
  return Number.isSafeInteger(fileId) && Number.isSafeInteger(index) && Number.isSafeInteger(gen) ? { fileId, index, gen } : null;
}

/** Bytes written to a block and not yet in its file: where, and the caller's buffer (kept, not copied). */
interface Piece {
  position: number;
  data: Buffer;
  at: number;
}

/** How long written bytes may stay in memory before they go to their block file. */
export const WRITE_BEHIND_MS = 1000;
/** Past this many bytes held in memory, the oldest blocks go to their files at once. */
export const WRITE_BEHIND_BYTES = 64 * 1024 * 1024;
/**
 * Paced block file deletions run at once, at most. A commit in local mode drops every block it
 * covers, and after a `tar x` that is thousands of files: deleted all at once, their unlinks,
 * handle closes and promises kept the event loop busy for ~160 ms (measured), and every FUSE
 * request waited.
 */
export const DISCARDS_AT_ONCE = 2;
/**
 * Block writes running at once, at most (each holds an open file): a restart that replayed 20,000
 * pending small files started a write for every one at once, past the pool of open handles and
 * into EMFILE, and each trim of the pool walked all of them (a scale review: 23-28 s to mount).
 */
export const MAX_FLUSHING = 32;
/** After a failed write-behind, the next try waits this long, doubling up to the maximum. */
export const RETRY_FIRST_MS = 250;
export const RETRY_MAX_MS = 10_000;

/**
 * The block files on disk and a bounded pool of open handles. Writes are held in memory for up to
 * WRITE_BEHIND_MS (reads see them at once) and then written, a block's pieces in one go: a FUSE
 * write then costs no file call, and a file removed or truncated meanwhile (a build's temporary
 * files, `rm -r` after `tar x`) never reaches the disk at all. Nothing is fsynced: durability of
 * dirty data is the journal's job, and clean data is checked against its CRC after a restart.
 */
export class BlockFiles {
  private readonly open = new Set<Block>();
  /** Fan-out folders known to exist; created on first use, not all up front. */
  private readonly made = new Set<number>();
  /** Blocks with bytes held in memory, oldest first (insertion order). */
  private readonly pending = new Map<Block, Piece[]>();
  private pendingBytes = 0;
  /** Blocks whose held bytes are being written to their files now. */
  private readonly flushing = new Map<Block, Promise<void>>();
  /** A write was not started for the limit on writes at once (MAX_FLUSHING). */
  private heldBack = false;
  private timer: NodeJS.Timeout | null = null;
  /** Blocks whose file this process created or opened: the others have no file yet. */
  private readonly onDisk = new WeakSet<Block>();
  /** Deletions running (at most DISCARDS_AT_ONCE), and those waiting for a turn, in order. */
  private discarding = 0;
  private readonly discardTurns: (() => void)[] = [];
  /**
   * Set while write-behind fails (a full disk, an I/O error): the held bytes stay in memory, where
   * reads find them, and are tried again from `until` on.
   */
  private stall: { err: unknown; until: number; delayMs: number } | null = null;
  /** Failures since the last flushAll began: flushAll gives up on them instead of looping. */
  private failures = 0;

  /**
   * `onLost`: a block the index names could not be written through and was dropped; its data is
   * gone. `onStall`: write-behind failed (`err`) and bytes are held until it works again (null).
   * `remove` deletes a file (tests count the deletions in flight).
   */
  constructor(
    readonly root: string,
    private readonly maxOpen: number,
    private readonly onLost: (b: Block, err: unknown) => void,
    private readonly onStall: (err: unknown) => void = () => {},
    private readonly remove: (path: string) => Promise<void> = unlink,
  ) {}

  /** Why write-behind is failing now (held bytes wait in memory), or null. */
  get stalled(): unknown {
    return this.stall?.err ?? null;
  }

  /** The next flush tries at once, whatever the retry time (closing: one last try). */
  retryNow(): void {
    if (this.stall) this.stall.until = 0;
  }

  /** True when some of `b`'s bytes are held in memory, not yet in its file. */
  holds(b: Block): boolean {
    return this.pending.has(b);
  }

  get heldBytes(): number {
    return this.pendingBytes;
  }

  async init(): Promise<void> {
    await mkdir(this.root, { recursive: true });
  }

  path(b: Block): string {
    return join(this.root, hex2(b.gen % FANOUT), blockFileName(b.fileId, b.index, b.gen));
  }

  /** Every block file present: fan-out folder, name, and the parsed name (null when foreign). */
  async list(): Promise<{ path: string; parsed: ReturnType<typeof parseBlockFileName> }[]> {
    const out: { path: string; parsed: ReturnType<typeof parseBlockFileName> }[] = [];
    for (const sub of await readdir(this.root, { withFileTypes: true })) {
      if (!sub.isDirectory()) continue;
      const dir = join(this.root, sub.name);
      for (const name of await readdir(dir)) out.push({ path: join(dir, name), parsed: parseBlockFileName(name) });
      if (/^[0-9a-f]{2}$/.test(sub.name)) this.made.add(parseInt(sub.name, 16));
    }
    return out;
  }

  /**
   * Takes the bytes into the block, held in memory until written behind; `data` must not change
   * afterwards.
   */
  write(b: Block, data: Buffer, dataOffset: number, length: number, position: number): void {
    if (length === 0) return;
    let list = this.pending.get(b);
    if (!list) this.pending.set(b, (list = []));
    list.push({ position, data: data.subarray(dataOffset, dataOffset + length), at: Date.now() });
    this.pendingBytes += length;
    if (this.pendingBytes > WRITE_BEHIND_BYTES) this.flushOldest();
    else this.timer ??= setTimeout(() => this.flushDue(), WRITE_BEHIND_MS).unref();
  }

  /**
   * Reads up to `length` bytes; fewer only at the end of the block's data. A block with no file
   * and nothing held reads as empty.
   */
  async read(b: Block, into: Buffer, intoOffset: number, length: number, position: number): Promise<number> {
    // Taken before the file is read: a write-behind that lands meanwhile leaves these pieces.
    const held = [...(this.pending.get(b) ?? [])];
    const h = this.memoryOnly(b) ? null : await this.handle(b, false);
    let done = 0;
    while (h && done < length) {
      const { bytesRead } = await h.read(into, intoOffset + done, length - done, position + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    // Held bytes (including those being written now) lie over what the file has.
    for (const p of held) {
      const s = Math.max(p.position, position);
      const e = Math.min(p.position + p.data.length, position + length);
      if (e <= s) continue;
      if (s > position + done) into.fill(0, intoOffset + done, intoOffset + s - position);
      p.data.copy(into, intoOffset + s - position, s - p.position, e - p.position);
      done = Math.max(done, e - position);
    }
    return done;
  }

  /** CRC-32 of the bytes of `pieces` in order; null when some of them are not on disk. */
  async crcOf(b: Block, pieces: readonly number[]): Promise<number | null> {
    let crc = 0;
    for (let i = 0; i < pieces.length; i += 2) {
      const start = pieces[i] as number;
      const len = (pieces[i + 1] as number) - start;
      const buf = Buffer.allocUnsafe(len);
      if ((await this.read(b, buf, 0, len, start)) !== len) return null;
      crc = crc32(buf, crc);
    }
    return crc;
  }

  async truncate(b: Block, size: number): Promise<void> {
    await this.flushing.get(b);
    const list = this.pending.get(b);
    if (list) {
      const kept: Piece[] = [];
      for (const p of list) {
        const end = Math.min(p.position + p.data.length, size);
        this.pendingBytes -= p.data.length - Math.max(0, end - p.position);
        if (end > p.position) kept.push(end === p.position + p.data.length ? p : { ...p, data: p.data.subarray(0, end - p.position) });
      }
      if (kept.length > 0) this.pending.set(b, kept);
      else this.pending.delete(b);
    }
    const h = await this.handle(b, false);
    if (h) await h.truncate(size);
  }

  /** True when every byte of `b` is held in memory: it has no file. */
  memoryOnly(b: Block): boolean {
    return !b.indexed && !this.onDisk.has(b) && !this.flushing.has(b);
  }

  /**
   * Closes the block's handle and deletes its file (a file already gone is fine); held bytes are
   * dropped. `paced`: the deletion waits for a turn (at most DISCARDS_AT_ONCE run), for blocks
   * dropped in bulk; else it runs at once.
   */
  async discard(b: Block, paced = false): Promise<void> {
    // Dropped before anything is awaited, so a flushAll that runs meanwhile cannot write them.
    this.drop(b);
    await this.flushing.get(b);
    if (!this.onDisk.has(b) && !b.indexed) return;
    const path = this.path(b);
    const remove = async (): Promise<void> => {
      try {
        await this.closeHandle(b);
      } finally {
        // A close(2) that fails still releases the descriptor: the file goes all the same.
        await this.discardPath(path);
      }
    };
    // Each block's file name is its own (the generation): a deletion that waits its turn can
    // never hit a newer block's file.
    await (paced ? this.inTurn(remove) : remove());
  }

  /** Runs `fn` once fewer than DISCARDS_AT_ONCE deletions run; a finished one hands its turn on. */
  private async inTurn(fn: () => Promise<void>): Promise<void> {
    if (this.discarding < DISCARDS_AT_ONCE) this.discarding++;
    else await new Promise<void>((turn) => this.discardTurns.push(turn));
    try {
      await fn();
    } finally {
      const next = this.discardTurns.shift();
      if (next) next();
      else this.discarding--;
    }
  }

  async discardPath(path: string): Promise<void> {
    try {
      await this.remove(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }

  /** Writes the bytes `b` holds to its file now; rejects when that fails (the bytes stay held). */
  async flushNow(b: Block): Promise<void> {
    const failures = this.failures;
    while (this.pending.has(b) || this.flushing.has(b)) {
      this.flushBlock(b, true, true);
      await this.flushing.get(b);
      if (this.failures !== failures && this.pending.has(b)) throw this.stall?.err;
    }
  }

  /** Writes every held byte to its file; rejects when a write fails (its bytes stay held). */
  async flushAll(): Promise<void> {
    // Failing and not yet time to try again: no file call per held block.
    if (this.stall && Date.now() < this.stall.until && this.pending.size > 0) throw this.stall.err;
    const failures = this.failures;
    while (this.pending.size > 0 || this.flushing.size > 0) {
      for (const b of this.pending.keys()) this.flushBlock(b, true);
      await Promise.all(this.flushing.values());
      if (this.failures !== failures && this.pending.size > 0) throw this.stall?.err;
    }
  }

  async closeAll(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    try {
      await this.flushAll();
    } finally {
      for (const b of [...this.open]) await this.closeHandle(b);
    }
  }

  private drop(b: Block): void {
    for (const p of this.pending.get(b) ?? []) this.pendingBytes -= p.data.length;
    this.pending.delete(b);
  }

  private flushDue(): void {
    this.timer = null;
    if (this.stall && Date.now() < this.stall.until) {
      this.timer = setTimeout(() => this.flushDue(), this.stall.until - Date.now()).unref();
      return;
    }
    this.startDue();
    if (this.pending.size > this.flushing.size) this.timer = setTimeout(() => this.flushDue(), WRITE_BEHIND_MS / 4).unref();
  }

  /** Starts the writes of the blocks held longer than the write-behind delay, up to the limit. */
  private startDue(): void {
    const due = Date.now() - WRITE_BEHIND_MS;
    for (const [b, list] of this.pending) {
      if ((list[0] as Piece).at > due) break;
      if (this.flushing.size >= MAX_FLUSHING) return void (this.heldBack = true);
      this.flushBlock(b);
    }
  }

  private flushOldest(): void {
    // Failing: the bytes wait in memory, bounded by the dirty quota (clean data is not taken then).
    if (this.stall) return;
    let over = this.pendingBytes - WRITE_BEHIND_BYTES / 2;
    for (const [b, list] of this.pending) {
      if (over <= 0) break;
      if (this.flushing.size >= MAX_FLUSHING) return void (this.heldBack = true);
      if (this.flushing.has(b)) continue;
      for (const p of list) over -= p.data.length;
      this.flushBlock(b);
    }
  }

  /**
   * Writes the pieces a block holds now, in order; they stay readable from memory until written.
   * While write-behind fails, only `now` (a caller waiting for the disk) tries before the retry time.
   * At most MAX_FLUSHING run at once, except the one block a caller waits for (`force`).
   */
  private flushBlock(b: Block, now = false, force = false): void {
    if (this.flushing.has(b)) return;
    if (this.stall && !now && Date.now() < this.stall.until) return;
    if (!force && this.flushing.size >= MAX_FLUSHING) {
      this.heldBack = true;
      return;
    }
    const list = this.pending.get(b);
    if (!list) return;
    const n = list.length;
    const run = (async () => {
      const h = await this.handle(b, true);
      for (const p of list.slice(0, n)) {
        let done = 0;
        while (done < p.data.length) done += (await h.write(p.data, done, p.data.length - done, p.position + done)).bytesWritten;
      }
    })().then(
      () => {
        // Pieces added meanwhile stay held; a discard or truncate waited for this write.
        const held = this.pending.get(b);
        if (held === list) {
          for (const p of list.splice(0, n)) this.pendingBytes -= p.data.length;
          if (list.length === 0) this.pending.delete(b);
        }
        if (this.stall) {
          this.stall = null;
          this.onStall(null);
        }
      },
      (err: unknown) => {
        this.failures++;
        // A block the index names must not keep bytes its file lacks: a crash would leave the
        // index vouching for the old ones. Any other block keeps them in memory and tries again
        // (nothing is lost: dirty bytes are in the journal until committed, then dropped here).
        if (b.indexed) {
          this.drop(b);
          this.onLost(b, err);
          return;
        }
        const delayMs = this.stall ? Math.min(this.stall.delayMs * 2, RETRY_MAX_MS) : RETRY_FIRST_MS;
        const first = this.stall === null;
        this.stall = { err, until: Date.now() + delayMs, delayMs };
        if (first) this.onStall(err);
      },
    ).finally(() => {
      this.flushing.delete(b);
      if (this.heldBack && !this.stall) {
        // Writes were held back by the limit: the next ones start now, not at the next tick.
        this.heldBack = false;
        if (this.pendingBytes > WRITE_BEHIND_BYTES) this.flushOldest();
        this.startDue();
      }
      if (this.pending.has(b) && !this.timer) this.timer = setTimeout(() => this.flushDue(), this.stall ? this.stall.delayMs : WRITE_BEHIND_MS).unref();
    });
    this.flushing.set(b, run);
  }

  private async handle(b: Block, create: true): Promise<FileHandle>;
  private async handle(b: Block, create: false): Promise<FileHandle | null>;
  private async handle(b: Block, create: boolean): Promise<FileHandle | null> {
    if (b.handle) {
      this.open.delete(b);
      this.open.add(b);
      return b.handle;
    }
    let h: FileHandle;
    const fan = b.gen % FANOUT;
    if (create && !this.made.has(fan)) {
      await mkdir(join(this.root, hex2(fan)), { recursive: true });
      this.made.add(fan);
    }
    try {
      h = await open(this.path(b), create ? constants.O_RDWR | constants.O_CREAT : constants.O_RDWR, 0o600);
    } catch (err) {
      if (!create && (err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
    if (b.handle) {
      // Another open of this block finished first (a read and a write-behind): one handle per
      // block, or this one would escape the pool and its bound.
      await h.close();
      this.open.delete(b);
      this.open.add(b);
      return b.handle;
    }
    b.handle = h;
    this.onDisk.add(b);
    this.open.add(b);
    await this.trim();
    return h;
  }

  /** Keeps the pool bounded: closes the least recently used handles of blocks no operation holds. */
  private async trim(): Promise<void> {
    if (this.open.size <= this.maxOpen) return;
    for (const b of this.open) {
      if (this.open.size <= this.maxOpen) break;
      if (b.pins === 0 && !this.flushing.has(b)) await this.closeHandle(b);
    }
  }

  private async closeHandle(b: Block): Promise<void> {
    const h = b.handle;
    if (!h) return;
    b.handle = null;
    this.open.delete(b);
    await h.close();
  }
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0');
}
