import { constants } from 'node:fs';
import { mkdir, open, readdir, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
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

/**
 * The block files on disk and a bounded pool of open handles. Writes go to the page cache and
 * are never fsynced one by one: durability of dirty data is the journal's job, and clean data is
 * checked against its CRC after a restart.
 */
export class BlockFiles {
  private readonly open = new Set<Block>();
  /** Fan-out folders known to exist; created on first use, not all up front. */
  private readonly made = new Set<number>();

  constructor(
    readonly root: string,
    private readonly maxOpen: number,
  ) {}

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

  async write(b: Block, data: Buffer, dataOffset: number, length: number, position: number): Promise<void> {
    const h = await this.handle(b, true);
    let done = 0;
    while (done < length) {
      const { bytesWritten } = await h.write(data, dataOffset + done, length - done, position + done);
      done += bytesWritten;
    }
  }

  /** Reads up to `length` bytes; fewer only at the end of the file. A missing file reads as empty. */
  async read(b: Block, into: Buffer, intoOffset: number, length: number, position: number): Promise<number> {
    const h = await this.handle(b, false);
    if (!h) return 0;
    let done = 0;
    while (done < length) {
      const { bytesRead } = await h.read(into, intoOffset + done, length - done, position + done);
      if (bytesRead === 0) break;
      done += bytesRead;
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
    const h = await this.handle(b, false);
    if (h) await h.truncate(size);
  }

  /** Closes the block's handle and deletes its file (a file already gone is fine). */
  async discard(b: Block): Promise<void> {
    const path = this.path(b);
    await this.closeHandle(b);
    await this.discardPath(path);
  }

  async discardPath(path: string): Promise<void> {
    try {
      await unlink(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }

  async closeAll(): Promise<void> {
    for (const b of [...this.open]) await this.closeHandle(b);
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
    b.handle = h;
    this.open.add(b);
    await this.trim();
    return h;
  }

  /** Keeps the pool bounded: closes the least recently used handles of blocks no operation holds. */
  private async trim(): Promise<void> {
    if (this.open.size <= this.maxOpen) return;
    for (const b of this.open) {
      if (this.open.size <= this.maxOpen) break;
      if (b.pins === 0) await this.closeHandle(b);
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
