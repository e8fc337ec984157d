import { createHash } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Content-addressed chunks on disk: `chunks/ab/abcdef...` named by SHA-256. A chunk is written to a
 * temporary name, fsynced, then renamed, so a crash never leaves a chunk whose name lies about its bytes.
 */
export class ChunkStore {
  private readonly dirsMade = new Set<string>();
  private readonly unsyncedDirs = new Set<string>();

  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
  }

  static hash(data: Buffer): string {
    return createHash('sha256').update(data).digest('hex');
  }

  pathOf(hash: string): string {
    return join(this.dir, hash.slice(0, 2), hash);
  }

  has(hash: string): boolean {
    return existsSync(this.pathOf(hash));
  }

  /** Stores `data` (if new) and returns its hash. Call `syncDirs()` before relying on it after a crash. */
  put(data: Buffer): string {
    const hash = ChunkStore.hash(data);
    const path = this.pathOf(hash);
    if (existsSync(path)) return hash;
    const sub = join(this.dir, hash.slice(0, 2));
    if (!this.dirsMade.has(sub)) {
      mkdirSync(sub, { recursive: true });
      this.dirsMade.add(sub);
    }
    const tmp = `${path}.tmp`;
    const fd = openSync(tmp, 'w');
    try {
      writeSync(fd, data);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
    this.unsyncedDirs.add(sub);
    return hash;
  }

  /** Makes the renames of `put` durable: one fsync per touched directory, batched. */
  syncDirs(): void {
    for (const d of this.unsyncedDirs) {
      const fd = openSync(d, 'r');
      try {
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    }
    this.unsyncedDirs.clear();
  }

  get(hash: string): Buffer {
    return readFileSync(this.pathOf(hash));
  }

  /** Deletes every chunk not in `live`; returns how many were removed. */
  collect(live: ReadonlySet<string>): number {
    let removed = 0;
    for (const sub of readdirSync(this.dir)) {
      for (const name of readdirSync(join(this.dir, sub))) {
        if (!live.has(name)) {
          rmSync(join(this.dir, sub, name), { force: true });
          removed++;
        }
      }
    }
    return removed;
  }
}
