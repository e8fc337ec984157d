import { open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';

/*
 * The persistent index of clean data: `index.json` in the cache folder. Layout: one line of JSON
 * (the body), then one line with the body's CRC-32 in hex. It is written to `index.json.tmp`,
 * fsynced, then renamed over the old one, so a reader sees the old index or the new one, whole.
 *
 * Body: {"format":"aether-cache-index","version":1,"blockBytes":N,"nextGen":N,
 *        "blocks":[[fileId, blockIndex, gen, crc32, [start, end, start, end, ...]], ...]}
 * where the start/end pairs are the block's clean byte ranges (block-relative, sorted, disjoint)
 * and crc32 covers those bytes in order. Dirty data is never listed: after a restart it is
 * rebuilt by replaying the journal.
 */

export const INDEX_FORMAT = 'aether-cache-index';
export const INDEX_VERSION = 1;
const FILE = 'index.json';

export interface IndexEntry {
  fileId: number;
  index: number;
  gen: number;
  crc: number;
  pieces: number[];
}

export interface IndexContent {
  blockBytes: number;
  nextGen: number;
  blocks: IndexEntry[];
}

export type IndexLoad = { kind: 'missing' } | { kind: 'corrupt'; why: string } | { kind: 'ok'; content: IndexContent };

export function encodeIndex(c: IndexContent): string {
  const body = JSON.stringify({
    format: INDEX_FORMAT,
    version: INDEX_VERSION,
    blockBytes: c.blockBytes,
    nextGen: c.nextGen,
    blocks: c.blocks.map((b) => [b.fileId, b.index, b.gen, b.crc, b.pieces]),
  });
  return `${body}\n${crc32(body).toString(16).padStart(8, '0')}\n`;
}

export function decodeIndex(text: string): IndexLoad {
  const lines = text.split('\n');
  if (lines.length !== 3 || lines[2] !== '') return { kind: 'corrupt', why: 'not two lines' };
  const [body, check] = lines as [string, string];
  if (crc32(body).toString(16).padStart(8, '0') !== check) return { kind: 'corrupt', why: 'checksum mismatch' };
  let doc: unknown;
  try {
    doc = JSON.parse(body);
  } catch {
    return { kind: 'corrupt', why: 'body is not JSON' };
  }
  const d = doc as { format?: unknown; version?: unknown; blockBytes?: unknown; nextGen?: unknown; blocks?: unknown };
  if (d.format !== INDEX_FORMAT || d.version !== INDEX_VERSION) return { kind: 'corrupt', why: `unknown format ${String(d.format)} v${String(d.version)}` };
  if (!isCount(d.blockBytes) || d.blockBytes === 0 || !isCount(d.nextGen) || !Array.isArray(d.blocks)) return { kind: 'corrupt', why: 'bad header fields' };
  const blocks: IndexEntry[] = [];
  for (const row of d.blocks as unknown[]) {
    const e = decodeEntry(row, d.blockBytes);
    if (!e) return { kind: 'corrupt', why: `bad block entry ${JSON.stringify(row)}` };
    blocks.push(e);
  }
  return { kind: 'ok', content: { blockBytes: d.blockBytes, nextGen: d.nextGen, blocks } };
}

function decodeEntry(row: unknown, blockBytes: number): IndexEntry | null {
  if (!Array.isArray(row) || row.length !== 5) return null;
  const [fileId, index, gen, crc, pieces] = row as unknown[];
  if (!isCount(fileId) || !isCount(index) || !isCount(gen) || !isCount(crc) || crc > 0xffffffff || !Array.isArray(pieces)) return null;
  if (pieces.length === 0 || pieces.length % 2 !== 0) return null;
  let prev = -1;
  for (const p of pieces as unknown[]) {
    if (!isCount(p) || p > blockBytes || p < prev) return null;
    prev = p;
  }
  for (let i = 0; i < pieces.length; i += 2) if ((pieces[i] as number) === (pieces[i + 1] as number)) return null;
  return { fileId, index, gen, crc, pieces: pieces as number[] };
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

export async function readIndex(dir: string): Promise<IndexLoad> {
  let text: string;
  try {
    text = await readFile(join(dir, FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'missing' };
    throw err;
  }
  return decodeIndex(text);
}

/** Rewrite-then-rename; one fsync per index write, never one per cache write. */
export async function writeIndex(dir: string, content: IndexContent): Promise<void> {
  const tmp = join(dir, `${FILE}.tmp`);
  const h = await open(tmp, 'w', 0o600);
  try {
    await h.writeFile(encodeIndex(content));
    await h.sync();
  } finally {
    await h.close();
  }
  await rename(tmp, join(dir, FILE));
}
