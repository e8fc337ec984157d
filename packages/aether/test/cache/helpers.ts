import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { FileCache, type CacheOptions } from '../../src/runtime/cache/cache.js';
import { ManualClock } from '../../src/runtime/infra/clock.js';

export function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'aether-cache-'));
}

/** A disk whose free space the test sets. */
export class FakeDisk {
  freeBytes = 1e12;
  calls = 0;
  readonly statfs = async (_path: string) => {
    this.calls++;
    return { bavail: this.freeBytes, bsize: 1 };
  };
}

export interface Harness {
  cache: FileCache;
  dir: string;
  registry: Registry;
  clock: ManualClock;
  disk: FakeDisk;
}

/** Opens a cache on real files in a temp folder, with small blocks and no timers unless asked. */
export async function openCache(opts: Partial<CacheOptions> & { dir?: string; disk?: FakeDisk } = {}): Promise<Harness> {
  const dir = opts.dir ?? tempDir();
  const registry = new Registry();
  const clock = (opts.clock as ManualClock | undefined) ?? new ManualClock();
  const disk = opts.disk ?? new FakeDisk();
  const cache = await FileCache.open({
    limits: { max_bytes: 1 << 30, dirty_max_bytes: 1 << 30 },
    blockBytes: 4096,
    indexFlushIntervalMs: 0,
    diskFreePollMs: 0,
    statfs: disk.statfs,
    ...opts,
    dir,
    registry,
    clock,
  });
  return { cache, dir, registry, clock, disk };
}

/** Deterministic bytes: `length` bytes derived from `seed`. */
export function bytes(length: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(length);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

export async function counter(registry: Registry, name: string): Promise<number> {
  const m = registry.getSingleMetric(name);
  if (!m) throw new Error(`no metric ${name}`);
  const v = (await m.get()).values[0]?.value;
  return v ?? 0;
}
