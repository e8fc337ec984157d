import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { ManualClock } from '../../src/runtime/infra/clock.js';
import { Journal, type JournalEntry, type JournalOptions } from '../../src/runtime/journal/journal.js';
import type { SyncSettings } from '../../src/runtime/journal/sync.js';
import { MemoryFs } from './memory-fs.js';

export const JOURNAL_DIR = '/state/journal';

export function tempStateDir(): string {
  return mkdtempSync(join(tmpdir(), 'aether-journal-'));
}

/** xorshift32: a small deterministic generator of 32-bit values, so failing runs can be replayed. */
export function xorshift32(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

/** Uniform numbers in [0, 1) from `seed`. */
export function prng(seed: number): () => number {
  const next = xorshift32(seed);
  return () => next() / 2 ** 32;
}

function xorshift(seed: number): () => number {
  return xorshift32(seed * 2654435761);
}

/** Deterministic bytes for `seq`, exactly `len` of them. */
export function fixedPayload(seq: number, len: number): Buffer {
  const next = xorshift(seq + 0x9e3779b9);
  const b = Buffer.allocUnsafe(len);
  for (let i = 0; i < len; i++) b[i] = next() & 0xff;
  return b;
}

/** A deterministic payload for `seq`: its length (0..maxBytes) and bytes follow from the number alone. */
export function payloadFor(seq: number, maxBytes = 3000): Buffer {
  return fixedPayload(seq, xorshift(seq)() % (maxBytes + 1));
}

/** Flips the bits of `mask` in byte `i`. */
export function flip(buf: Buffer, i: number, mask: number): void {
  buf[i] = (buf[i] as number) ^ mask;
}

export function typeFor(seq: number): number {
  return seq % 7;
}

export const interval = (intervalMs = 5, backlogBytes = 0): SyncSettings => ({ policy: 'interval', intervalMs, backlogBytes });
export const manual = (backlogBytes = 0): SyncSettings => ({ policy: 'manual', intervalMs: 5, backlogBytes });
export const immediate = (backlogBytes = 0): SyncSettings => ({ policy: 'immediate', intervalMs: 5, backlogBytes });

export interface Harness {
  journal: Journal;
  fs: MemoryFs;
  clock: ManualClock;
  registry: Registry;
}

/** A journal on an in-memory file system, a manual clock and a fresh registry. */
export async function openMemoryJournal(sync: SyncSettings, opts: Partial<JournalOptions> & { fs?: MemoryFs } = {}): Promise<Harness> {
  const fs = opts.fs ?? new MemoryFs();
  const clock = (opts.clock as ManualClock | undefined) ?? new ManualClock();
  const registry = opts.registry ?? new Registry();
  const journal = await Journal.open({ dir: JOURNAL_DIR, segmentBytes: 1 << 20, ...opts, sync, fs, clock, registry });
  return { journal, fs, clock, registry };
}

export async function openDiskJournal(stateDir: string, sync: SyncSettings, opts: Partial<JournalOptions> = {}): Promise<Journal> {
  return Journal.open({ dir: join(stateDir, 'journal'), segmentBytes: 1 << 20, registry: new Registry(), ...opts, sync });
}

export async function collect(journal: Journal, fromSeq?: number): Promise<JournalEntry[]> {
  const out: JournalEntry[] = [];
  for await (const e of journal.entries({ fromSeq })) out.push(e);
  return out;
}

/** The value of one series of a metric in `registry` (0 when the series does not exist). */
export async function metricValue(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (!metric) throw new Error(`metric ${name} is not registered`);
  const { values } = await metric.get();
  const hit = values.find((v) => Object.entries(labels).every(([k, want]) => String((v.labels as Record<string, unknown>)[k]) === want));
  return hit?.value ?? 0;
}

/** Counts of `aether_journal_wal_flush_total` by "reason/outcome", non-zero ones only. */
export async function flushCounts(registry: Registry): Promise<Record<string, number>> {
  const metric = registry.getSingleMetric('aether_journal_wal_flush_total');
  if (!metric) throw new Error('aether_journal_wal_flush_total is not registered');
  const out: Record<string, number> = {};
  for (const v of (await metric.get()).values) {
    const l = v.labels as Record<string, string>;
    if (v.value > 0) out[`${l.reason}/${l.outcome}`] = v.value;
  }
  return out;
}

/** Lets every queued microtask and immediate run (the in-memory file system resolves in microtasks). */
export function settle(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}

/** A latch a hook can wait on: `open()` releases everyone waiting. */
export function latch(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((r) => (open = r));
  return { wait, open };
}

export function ioError(): NodeJS.ErrnoException {
  return Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
}

