import assert from 'node:assert/strict';
import fs from 'node:fs';
import { skipBytes } from '../infra/buffers.js';

/**
 * The file operations the journal needs, injected so tests can simulate failing fsyncs and
 * crashes that keep only durable bytes. `nodeJournalFs` is the real thing.
 */
export interface JournalFile {
  /** The OS descriptor, for an fdatasync run outside the journal (OutsideSync); none in test doubles. */
  readonly fd?: number;
  /**
   * Writes every byte of `buffers` at `position`. Synchronous on purpose: a write into the page
   * cache takes a few microseconds, while a round trip through libuv's thread pool costs tens of
   * them, and FUSE delivers a file's writes one at a time. The slow part, fsync, stays async.
   */
  writevSync(buffers: readonly Buffer[], position: number): void;
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<number>;
  datasync(): Promise<void>;
  truncate(lengthBytes: number): Promise<void>;
  sizeBytes(): Promise<number>;
  close(): Promise<void>;
}

/** Open modes, named after Node's flags: create-exclusive, replace, read, read-write. */
export type OpenMode = 'wx' | 'w' | 'r' | 'r+';

export interface JournalFs {
  open(path: string, mode: OpenMode): Promise<JournalFile>;
  /** The same, synchronously: the spare segment is made when a change asks for room (`hasRoom`). */
  openSync?(path: string, mode: OpenMode): JournalFile;
  /** Names in a directory; fails with ENOENT/ENOTDIR like readdir(2). */
  readdir(path: string): Promise<string[]>;
  /** Creates the directory and its parents; true when it did not exist before. */
  mkdirp(path: string): Promise<boolean>;
  /** The whole file, or null when it does not exist. */
  readFile(path: string): Promise<Buffer | null>;
  rename(from: string, to: string): Promise<void>;
  /** Removes a file; a file that is already gone is not an error. */
  unlink(path: string): Promise<void>;
  /** fsync on the directory itself, so created, renamed and removed names are durable. */
  syncDir(path: string): Promise<void>;
}

function callback<T>(fn: (cb: (err: NodeJS.ErrnoException | null, value: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => fn((err, value) => (err ? reject(err) : resolve(value))));
}

class NodeJournalFile implements JournalFile {
  constructor(readonly fd: number) {}

  writevSync(buffers: readonly Buffer[], position: number): void {
    // pwrite costs less than half of pwritev for one buffer, the common case of one writer.
    if (buffers.length === 1) return this.writeAll(buffers[0] as Buffer, position);
    let pending = buffers;
    let remaining = buffers.reduce((n, b) => n + b.length, 0);
    let at = position;
    while (remaining > 0) {
      const n = fs.writevSync(this.fd, pending, at);
      assert.ok(n > 0, 'writev wrote nothing');
      remaining -= n;
      at += n;
      if (remaining > 0) pending = skipBytes(pending, n);
    }
  }

  private writeAll(buf: Buffer, position: number): void {
    for (let done = 0; done < buf.length; ) {
      const n = fs.writeSync(this.fd, buf, done, buf.length - done, position + done);
      assert.ok(n > 0, 'write wrote nothing');
      done += n;
    }
  }

  read(buffer: Buffer, offset: number, length: number, position: number): Promise<number> {
    return callback((cb) => fs.read(this.fd, buffer, offset, length, position, cb));
  }

  datasync(): Promise<void> {
    return callback<void>((cb) => fs.fdatasync(this.fd, (err) => cb(err, undefined)));
  }

  truncate(lengthBytes: number): Promise<void> {
    return callback<void>((cb) => fs.ftruncate(this.fd, lengthBytes, (err) => cb(err, undefined)));
  }

  async sizeBytes(): Promise<number> {
    const st = await callback<fs.Stats>((cb) => fs.fstat(this.fd, cb));
    return st.size;
  }

  close(): Promise<void> {
    return callback<void>((cb) => fs.close(this.fd, (err) => cb(err, undefined)));
  }
}

export const nodeJournalFs: JournalFs = {
  async open(path, mode) {
    // Journal files hold user data: private to the owner.
    const fd = await callback<number>((cb) => fs.open(path, mode, 0o600, cb));
    return new NodeJournalFile(fd);
  },
  openSync: (path, mode) => new NodeJournalFile(fs.openSync(path, mode, 0o600)),
  readdir: (path) => fs.promises.readdir(path),
  async mkdirp(path) {
    const first = await fs.promises.mkdir(path, { recursive: true, mode: 0o700 });
    return first !== undefined;
  },
  async readFile(path) {
    try {
      return await fs.promises.readFile(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  },
  rename: (from, to) => fs.promises.rename(from, to),
  async unlink(path) {
    try {
      await fs.promises.unlink(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  },
  async syncDir(path) {
    const fd = await callback<number>((cb) => fs.open(path, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY, cb));
    try {
      await callback<void>((cb) => fs.fsync(fd, (err) => cb(err, undefined)));
    } finally {
      await callback<void>((cb) => fs.close(fd, (err) => cb(err, undefined)));
    }
  },
};
