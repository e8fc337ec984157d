/**
 * The hub protocol's frames (hub/PROTOCOL.md): JSON text frames for control, binary frames for
 * chunk data. Chunks go as binary because they are most of the bytes: base64 would add a third to
 * every upload and cost a copy and an encode on both sides.
 */
import { createHash } from 'node:crypto';
import { BLOCK_BYTES } from '@aether/core/store/sqlite-meta';
import type { Inode } from '@aether/core/tree/inode';
import { isHash, isU53, parseWireOp, ProtocolViolation, unsafeNameReason, VIEW_KEPT_NAMES_MAX, type WireEntry, type WireOp } from './wire-ops.js';

export const PROTOCOL_VERSION = 2;
/** Versions a hub serves: 2 added the feed window (`follow.window`, `feed-credit`), which a version 1 client does without. */
export const PROTOCOL_VERSIONS_SERVED: readonly number[] = [1, 2];
/** First byte of a binary frame that carries one chunk: then 32 bytes of SHA-256, then the data. */
export const CHUNK_FRAME_KIND = 0x01;
export const HASH_BYTES = 32;
/** Largest chunk: one store block. */
export const CHUNK_BYTES_MAX = BLOCK_BYTES;
/** Hashes per `have` or `get` request. */
export const HASHES_PER_REQUEST_MAX = 8192;
/** Close codes beyond the standard ones (4000-4999 are the application's). */
export const CLOSE_AUTH_FAILED = 4401;
export const CLOSE_PROTOCOL = 4400;
export const CLOSE_REPLACED = 4409;
export const CLOSE_SHUTDOWN = 1001;

export type ErrorCode =
  | 'AUTH_REQUIRED'
  | 'AUTH_FAILED'
  | 'UNSUPPORTED_VERSION'
  | 'MALFORMED'
  | 'UNKNOWN_TYPE'
  | 'UNSAFE_NAME'
  | 'BAD_OP'
  | 'BAD_CHUNK'
  | 'MISSING_CHUNKS'
  | 'STAGING_FULL'
  | 'CURSOR_AHEAD'
  | 'TOO_MANY_ERRORS'
  /** Never in an error frame: ws closes the connection with 1009; the hub counts and logs it. */
  | 'FRAME_TOO_LARGE'
  | 'BUSY'
  | 'INTERNAL';

// ---- client → hub ----
export interface HelloFrame {
  t: 'hello';
  v: number;
  token: string;
  mountId: string;
}
export interface HaveFrame {
  t: 'have';
  id: number;
  hashes: string[];
}
export interface BatchFrame {
  t: 'batch';
  id: number;
  /** The hub sequence the mount's view was at when it made these ops (per-entry `baseSeq` overrides). */
  baseSeq: number;
  /** The journal sequence this batch covers up to (entries coalesced away are covered too). */
  upToSeq: number;
  /**
   * The first journal sequence it covers: the mount had the acks of everything before (their
   * resolutions need not come again). Without it, the first entry's (entries coalesced into a
   * later one make that later than the first not acknowledged).
   */
  fromSeq?: number;
  entries: WireEntry[];
}
export interface FollowFrame {
  t: 'follow';
  /** The last hub sequence the mount applied; 0 for none. */
  cursor: number;
  /**
   * How many feed frames (entries, snapshot begin, parts and end) the hub may send before the
   * mount grants more (`feed-credit`): the mount's queue never holds more. Absent: no limit.
   */
  window?: number;
}
export interface GetFrame {
  t: 'get';
  id: number;
  hashes: string[];
}
/** The mount took `n` feed frames off its queue: the hub may send `n` more (see `follow.window`). */
export interface FeedCreditFrame {
  t: 'feed-credit';
  n: number;
}
export type ClientFrame = HelloFrame | HaveFrame | BatchFrame | FollowFrame | GetFrame | FeedCreditFrame;

// ---- hub → client ----
export interface Limits {
  maxFrameBytes: number;
  maxBatchEntries: number;
  maxStagedBytes: number;
  chunkBytesMax: number;
}
export interface WelcomeFrame {
  t: 'welcome';
  v: number;
  hubId: string;
  mountNo: number;
  /** First inode number of this mount's range: mountNo × 2^32; the mount allocates above it. */
  inoBase: number;
  hubSeq: number;
  /** Highest journal sequence of this mount the hub has committed. */
  appliedSeq: number;
  limits: Limits;
  heartbeatMs: number;
}
export interface MissingFrame {
  t: 'missing';
  id: number;
  hashes: string[];
}
export type Resolution =
  | { jseq: number; kind: 'renamed'; ino: number; parent: number; name: string; wanted: string }
  | { jseq: number; kind: 'conflict-copy'; ino: number; copyIno: number; parent: number; name: string }
  | { jseq: number; kind: 'diverted'; ino: number; copyIno: number }
  | { jseq: number; kind: 'skipped'; reason: string }
  /** The op's name no longer held its inode at the hub: it applied to the inode's name `parent`/`name`. */
  | { jseq: number; kind: 'moved'; ino: number; parent: number; name: string };
export interface AckFrame {
  t: 'ack';
  id: number;
  /** Everything of this mount up to this journal sequence is committed. */
  journalSeq: number;
  /** The changefeed entry of this batch; null when it was a duplicate or changed nothing. */
  hubSeq: number | null;
  duplicate: boolean;
  resolutions: Resolution[];
}
export interface FeedEntry {
  hubSeq: number;
  mountId: string;
  mountNo: number;
  journalSeq: number;
  committedMs: number;
  /** What the hub applied, in order: replaying these on the tree at hubSeq - 1 gives the tree at hubSeq. */
  ops: { jseq: number; op: WireOp }[];
  resolutions: Resolution[];
}
export interface EntryFrame {
  t: 'entry';
  entry: FeedEntry;
}
/** An inode as the store keeps it (packages/aether/src/tree/inode.ts). */
export type SnapshotInode = Inode;
export interface SnapshotBeginFrame {
  t: 'snapshot-begin';
  hubSeq: number;
}
export interface SnapshotPartFrame {
  t: 'snapshot-part';
  inodes: SnapshotInode[];
  dentries: [parent: number, name: string, ino: number][];
  blocks: [ino: number, idx: number, hash: string][];
}
export interface SnapshotEndFrame {
  t: 'snapshot-end';
  hubSeq: number;
}
export interface GotFrame {
  t: 'got';
  id: number;
  missing: string[];
}
export interface ErrorFrame {
  t: 'error';
  code: ErrorCode;
  message: string;
  /** The request (`have`, `batch`, `get`) it answers, if any. */
  id?: number;
  /** The hub closes the connection after a fatal error. */
  fatal: boolean;
  /** MISSING_CHUNKS: the hashes the hub lacks. */
  hashes?: string[];
}
export type HubFrame = WelcomeFrame | MissingFrame | AckFrame | EntryFrame | SnapshotBeginFrame | SnapshotPartFrame | SnapshotEndFrame | GotFrame | ErrorFrame;

// ---- binary chunk frames ----

export function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

export function encodeChunkFrame(hash: string, data: Buffer): Buffer {
  const out = Buffer.allocUnsafe(1 + HASH_BYTES + data.length);
  out[0] = CHUNK_FRAME_KIND;
  out.write(hash, 1, HASH_BYTES, 'hex');
  data.copy(out, 1 + HASH_BYTES);
  return out;
}

/** Decodes and verifies a chunk frame; returns why it is bad instead of throwing. */
export function decodeChunkFrame(frame: Buffer): { hash: string; data: Buffer } | { error: string } {
  if (frame.length < 1 + HASH_BYTES) return { error: `binary frame of ${frame.length} bytes is shorter than a chunk header` };
  if (frame[0] !== CHUNK_FRAME_KIND) return { error: `unknown binary frame kind ${frame[0]}` };
  const data = frame.subarray(1 + HASH_BYTES);
  if (data.length > CHUNK_BYTES_MAX) return { error: `chunk of ${data.length} bytes is larger than ${CHUNK_BYTES_MAX}` };
  const hash = frame.toString('hex', 1, 1 + HASH_BYTES);
  if (sha256Hex(data) !== hash) return { error: `chunk data does not match its hash ${hash}` };
  return { hash, data };
}

// ---- parsing what a client sends ----

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function isMountId(x: unknown): x is string {
  return typeof x === 'string' && UUID_RE.test(x);
}

/** An entry's `viewKept`: up to VIEW_KEPT_NAMES_MAX [parent, name] pairs. */
function keptNames(v: unknown, where: string): [number, string][] {
  if (!Array.isArray(v) || v.length === 0 || v.length > VIEW_KEPT_NAMES_MAX) malformed(`${where}: viewKept must be 1 to ${VIEW_KEPT_NAMES_MAX} [parent, name] pairs`);
  return v.map((pair: unknown) => {
    if (!Array.isArray(pair) || pair.length !== 2 || !isU53(pair[0]) || unsafeNameReason(pair[1]) !== null) malformed(`${where}: viewKept must be 1 to ${VIEW_KEPT_NAMES_MAX} [parent, name] pairs`);
    return [pair[0], pair[1] as string];
  });
}

function malformed(message: string): never {
  throw new ProtocolViolation('MALFORMED', message);
}

function hashList(o: Record<string, unknown>, t: string): string[] {
  const h = o.hashes;
  if (!Array.isArray(h) || h.length > HASHES_PER_REQUEST_MAX || !h.every(isHash)) malformed(`${t}: hashes must be an array of at most ${HASHES_PER_REQUEST_MAX} SHA-256 hex strings`);
  return h as string[];
}

function requestId(o: Record<string, unknown>, t: string): number {
  if (!isU53(o.id)) malformed(`${t}: id must be a whole number`);
  return o.id;
}

/** Parses a text frame's text as a JSON object; throws ProtocolViolation('MALFORMED'). */
export function parseJsonObject(text: string): Record<string, unknown> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    malformed('frame is not JSON');
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) malformed('frame must be a JSON object');
  return raw as Record<string, unknown>;
}

/** Checks a client's frame. Throws ProtocolViolation (MALFORMED, UNSAFE_NAME, BAD_OP); returns null for an unknown type. */
export function parseClientFrame(o: Record<string, unknown>, maxBatchEntries: number): ClientFrame | null {
  if (typeof o.t !== 'string') malformed('frame has no type (t)');
  switch (o.t) {
    case 'hello':
      if (!isU53(o.v)) malformed('hello: v must be the protocol version');
      // A missing token is an authentication failure, not a malformed frame: the reply says so.
      if (o.token !== undefined && (typeof o.token !== 'string' || o.token.length > 4096)) malformed('hello: token must be a string of at most 4096 characters');
      if (!isMountId(o.mountId)) malformed('hello: mountId must be a lowercase UUID');
      return { t: 'hello', v: o.v, token: (o.token as string | undefined) ?? '', mountId: o.mountId };
    case 'have':
      return { t: 'have', id: requestId(o, 'have'), hashes: hashList(o, 'have') };
    case 'get':
      return { t: 'get', id: requestId(o, 'get'), hashes: hashList(o, 'get') };
    case 'follow':
      if (!isU53(o.cursor)) malformed('follow: cursor must be a hub sequence (0 for none)');
      if (o.window !== undefined && !isU53(o.window)) malformed('follow: window must be a whole number of feed frames');
      return { t: 'follow', cursor: o.cursor, ...(o.window !== undefined ? { window: o.window } : {}) };
    case 'batch':
      return parseBatch(o, maxBatchEntries);
    case 'feed-credit':
      if (!isU53(o.n) || o.n < 1) malformed('feed-credit: n must be a whole number of feed frames, at least 1');
      return { t: 'feed-credit', n: o.n };
    default:
      return null;
  }
}

function parseBatch(o: Record<string, unknown>, maxBatchEntries: number): BatchFrame {
  const id = requestId(o, 'batch');
  if (!isU53(o.baseSeq) || !isU53(o.upToSeq)) malformed('batch: baseSeq and upToSeq must be whole numbers');
  if (o.fromSeq !== undefined && (!isU53(o.fromSeq) || o.fromSeq < 1 || o.fromSeq > o.upToSeq)) malformed('batch: fromSeq must be a whole number from 1 to upToSeq');
  if (!Array.isArray(o.entries)) malformed('batch: entries must be an array');
  if (o.entries.length > maxBatchEntries) malformed(`batch: ${o.entries.length} entries, more than ${maxBatchEntries}`);
  const entries: WireEntry[] = [];
  let prev = 0;
  for (const [i, e] of (o.entries as unknown[]).entries()) {
    const where = `batch ${id} entry ${i}`;
    if (e === null || typeof e !== 'object') malformed(`${where}: must be {seq, op}`);
    const { seq, baseSeq, viewKept, op } = e as Record<string, unknown>;
    if (!isU53(seq) || seq <= prev) malformed(`${where}: seq must be a whole number above the previous entry's`);
    if (seq > o.upToSeq) malformed(`${where}: seq ${seq} is past upToSeq ${o.upToSeq}`);
    if (baseSeq !== undefined && !isU53(baseSeq)) malformed(`${where}: baseSeq must be a whole number`);
    const entry: WireEntry = { seq, op: parseWireOp(op, where) };
    if (baseSeq !== undefined) entry.baseSeq = baseSeq;
    if (viewKept !== undefined) entry.viewKept = keptNames(viewKept, where);
    entries.push(entry);
    prev = seq;
  }
  // Entries start where the batch does or later (coalescing moves them later, never earlier).
  if (o.fromSeq !== undefined && entries.length > 0 && entries[0]!.seq < o.fromSeq) malformed(`batch: entry ${entries[0]!.seq} is before fromSeq ${o.fromSeq}`);
  return { t: 'batch', id, baseSeq: o.baseSeq, upToSeq: o.upToSeq, ...(o.fromSeq !== undefined ? { fromSeq: o.fromSeq } : {}), entries };
}
