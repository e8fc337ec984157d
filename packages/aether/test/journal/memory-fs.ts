import { basename, dirname } from 'node:path';
import type { JournalFile, JournalFs, OpenMode } from '../../src/runtime/journal/fs-layer.js';

function errno(code: string, message: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: ${message}`), { code });
}

/**
 * File contents: what the OS has (`data`), and what survived the last fdatasync (`durable`). As
 * Linux does, a failed fdatasync drops the pages it was writing back from the dirty set: their
 * bytes stay readable (`lost`) but no later fdatasync writes them, unless they are written again.
 */
class Inode {
  data = Buffer.alloc(0);
  size = 0;
  durable = Buffer.alloc(0);
  lost = new Uint8Array(0);

  write(buf: Buffer, position: number): void {
    const end = position + buf.length;
    if (end > this.data.length) {
      const bigger = Buffer.alloc(Math.max(end, this.data.length * 2));
      this.data.copy(bigger, 0, 0, this.size);
      this.data = bigger;
      const lost = new Uint8Array(bigger.length);
      lost.set(this.lost);
      this.lost = lost;
    }
    if (position > this.size) this.data.fill(0, this.size, position);
    buf.copy(this.data, position);
    this.lost.fill(0, position, end);
    this.size = Math.max(this.size, end);
  }

  /** A failed fdatasync: every byte not yet durable is dropped from the writeback. */
  failSync(): void {
    for (let i = 0; i < this.size; i++) if (i >= this.durable.length || this.data[i] !== this.durable[i]) this.lost[i] = 1;
  }

  /** A successful fdatasync: what the disk then holds (lost bytes keep their older content, or zeros). */
  sync(): void {
    const next = Buffer.from(this.bytes);
    for (let i = 0; i < this.size; i++) if (this.lost[i]) next[i] = i < this.durable.length ? this.durable[i]! : 0;
    this.durable = next;
  }

  get bytes(): Buffer {
    return this.data.subarray(0, this.size);
  }
}

export interface MemoryFsHooks {
  /** Runs before each fdatasync: throw to fail it, return a promise to hold it. */
  datasync?: (path: string) => void | Promise<void>;
  /** Runs before each write: throw to fail it. */
  write?: (path: string) => void;
}

/**
 * An in-memory file layer that models what survives a power loss: file bytes survive only up
 * to their last fdatasync, and names (created, renamed, removed) only once their directory was
 * fsynced. `crash()` returns the file system a reboot would find.
 */
export class MemoryFs implements JournalFs {
  private readonly dirs = new Map<string, Map<string, Inode>>();
  private readonly durableDirs = new Map<string, Map<string, Inode>>();
  readonly hooks: MemoryFsHooks = {};
  datasyncCalls = 0;
  syncDirCalls = 0;
  writeCalls = 0;

  private dir(path: string): Map<string, Inode> {
    const d = this.dirs.get(path);
    if (!d) throw errno('ENOENT', `no such directory '${path}'`);
    return d;
  }

  private inode(path: string): Inode {
    const f = this.dir(dirname(path)).get(basename(path));
    if (!f) throw errno('ENOENT', `no such file '${path}'`);
    return f;
  }

  /** Overwrites bytes of a file as the OS has them, outside the journal (pages gone from memory, read back from disk). */
  damage(path: string, position: number, bytes: Buffer): void {
    const f = this.inode(path);
    bytes.copy(f.data, position);
  }

  /** Bytes of a file as the OS has them (for tests that damage files). */
  file(path: string): Buffer {
    return Buffer.from(this.inode(path).bytes);
  }

  async open(path: string, mode: OpenMode): Promise<JournalFile> {
    await Promise.resolve();
    const d = this.dir(dirname(path));
    const name = basename(path);
    let f = d.get(name);
    if (mode === 'wx' && f) throw errno('EEXIST', `file exists '${path}'`);
    if ((mode === 'r' || mode === 'r+') && !f) throw errno('ENOENT', `no such file '${path}'`);
    if (!f || mode === 'w') {
      f = f ?? new Inode();
      f.size = 0;
      d.set(name, f);
    }
    return this.handle(path, f, mode !== 'r');
  }

  private handle(path: string, f: Inode, writable: boolean): JournalFile {
    let closed = false;
    const check = (): void => {
      if (closed) throw errno('EBADF', 'file is closed');
    };
    return {
      writevSync: (buffers, position) => {
        check();
        if (!writable) throw errno('EBADF', 'not open for writing');
        this.writeCalls++;
        this.hooks.write?.(path);
        f.write(Buffer.concat(buffers), position);
      },
      read: async (buffer, offset, length, position) => {
        check();
        const n = Math.max(0, Math.min(length, f.size - position));
        f.data.copy(buffer, offset, position, position + n);
        return n;
      },
      datasync: async () => {
        check();
        this.datasyncCalls++;
        try {
          await this.hooks.datasync?.(path);
        } catch (err) {
          f.failSync();
          throw err;
        }
        f.sync();
      },
      truncate: async (lengthBytes) => {
        check();
        f.size = Math.min(f.size, lengthBytes);
      },
      sizeBytes: async () => f.size,
      close: async () => {
        check();
        closed = true;
      },
    };
  }

  async readdir(path: string): Promise<string[]> {
    await Promise.resolve();
    return [...this.dir(path).keys()].sort();
  }

  async mkdirp(path: string): Promise<boolean> {
    await Promise.resolve();
    if (this.dirs.has(path)) return false;
    // Directories are modelled as always durable: the journal's own names are what matter here.
    for (let p = path; !this.dirs.has(p) && p !== dirname(p); p = dirname(p)) {
      this.dirs.set(p, new Map());
      this.durableDirs.set(p, new Map());
    }
    return true;
  }

  async readFile(path: string): Promise<Buffer | null> {
    await Promise.resolve();
    const f = this.dirs.get(dirname(path))?.get(basename(path));
    return f ? Buffer.from(f.bytes) : null;
  }

  async rename(from: string, to: string): Promise<void> {
    await Promise.resolve();
    const f = this.inode(from);
    this.dir(dirname(from)).delete(basename(from));
    this.dir(dirname(to)).set(basename(to), f);
  }

  async unlink(path: string): Promise<void> {
    await Promise.resolve();
    this.dirs.get(dirname(path))?.delete(basename(path));
  }

  async syncDir(path: string): Promise<void> {
    await Promise.resolve();
    this.syncDirCalls++;
    this.durableDirs.set(path, new Map(this.dir(path)));
  }

  /**
   * The file system after a power loss: durable names, each with its durable bytes. With
   * `random`, part of what was never fsynced reached the disk anyway (the OS writes back on its
   * own): a random prefix of each file's newer bytes survives, sometimes as zeros (blocks
   * allocated but never written), which leaves torn records behind.
   */
  crash(random?: () => number): MemoryFs {
    const after = new MemoryFs();
    for (const [path, entries] of this.durableDirs) {
      const d = new Map<string, Inode>();
      for (const [name, f] of entries) {
        const copy = new Inode();
        copy.write(f.durable, 0);
        const current = f.bytes;
        if (random && current.length > f.durable.length && current.subarray(0, f.durable.length).equals(f.durable)) {
          const extra = Math.floor(random() * (current.length - f.durable.length + 1));
          const tail = current.subarray(f.durable.length, f.durable.length + extra);
          copy.write(random() < 0.2 ? Buffer.alloc(tail.length) : tail, f.durable.length);
        }
        copy.durable = Buffer.from(copy.bytes);
        d.set(name, copy);
      }
      after.dirs.set(path, d);
      after.durableDirs.set(path, new Map(d));
    }
    return after;
  }

  /**
   * The file system after the process was killed (the OS lives on): every byte and name is
   * still there, and what was not durable is still not durable.
   */
  killProcess(): MemoryFs {
    const after = new MemoryFs();
    const copies = new Map<Inode, Inode>();
    const copyOf = (f: Inode): Inode => {
      let c = copies.get(f);
      if (!c) {
        c = new Inode();
        c.write(f.bytes, 0);
        c.durable = Buffer.from(f.durable);
        c.lost.set(f.lost.subarray(0, c.lost.length));
        copies.set(f, c);
      }
      return c;
    };
    for (const [path, entries] of this.dirs) after.dirs.set(path, new Map([...entries].map(([n, f]) => [n, copyOf(f)])));
    for (const [path, entries] of this.durableDirs) after.durableDirs.set(path, new Map([...entries].map(([n, f]) => [n, copyOf(f)])));
    return after;
  }
}
