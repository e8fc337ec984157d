/**
 * The ops a mount uploads and the changefeed carries, and their validation. They are the journal's
 * tree ops with two changes: ops that name an existing entry also carry the inode the mount saw
 * there (`ino`, and `dstIno` for a rename's destination), so the hub can tell a name that another
 * mount changed meanwhile; and `write`/`truncate` travel as `content` (the file's whole block map,
 * data as content-addressed chunks). See hub/PROTOCOL.md.
 */
import type { BlockRef, ContentOp } from '@aether/core/tree/content';
import type { Ino, Kind } from '@aether/core/tree/ops';
import { BLOCK_BYTES } from '@aether/core/store/sqlite-meta';

export const NAME_MAX_BYTES = 255;
export const SYMLINK_TARGET_MAX_BYTES = 4096;

export type WireOp =
  | { t: 'mknode'; parent: Ino; name: string; ino: Ino; kind: Kind; mode: number; uid: number; gid: number; target?: string; timeMs: number }
  | { t: 'link'; parent: Ino; name: string; ino: Ino; timeMs: number }
  | { t: 'unlink'; parent: Ino; name: string; ino: Ino; timeMs: number }
  | { t: 'rmdir'; parent: Ino; name: string; ino: Ino; timeMs: number }
  /** `dstIno`: the inode the mount saw at the destination, 0 when it saw none. */
  | { t: 'rename'; parent: Ino; name: string; ino: Ino; newParent: Ino; newName: string; dstIno: Ino; flags: number; timeMs: number }
  | ContentOp
  | { t: 'setattr'; ino: Ino; mode?: number; uid?: number; gid?: number; atimeMs?: number; mtimeMs?: number; timeMs: number }
  | { t: 'forget'; ino: Ino };

export interface WireEntry {
  /** The journal sequence number of the op on its mount. */
  seq: number;
  /** The hub sequence the mount's view was at when it made this op; defaults to the batch's. */
  baseSeq?: number;
  /**
   * A removal (unlink, rmdir, rename over) after which the mount's view still named the inode it
   * removes (a replay after a restart onto a tree another mount had changed; one name of a hard
   * link): those names, as [parent, name]. The mount removed a name, not the file.
   */
  viewKept?: [Ino, string][];
  op: WireOp;
}

/** Why a frame was refused; the `code` goes into the error frame. */
export class ProtocolViolation extends Error {
  constructor(
    readonly code: 'MALFORMED' | 'UNSAFE_NAME' | 'BAD_OP',
    message: string,
  ) {
    super(message);
    this.name = 'ProtocolViolation';
  }
}

function bad(message: string): never {
  throw new ProtocolViolation('BAD_OP', message);
}

const HASH_RE = /^[0-9a-f]{64}$/;
const U32_MAX = 0xffffffff;

export function isU53(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
}

function u53(o: Record<string, unknown>, key: string, where: string): number {
  const v = o[key];
  if (!isU53(v)) bad(`${where}: ${key} must be a whole number ≥ 0, got ${JSON.stringify(v)}`);
  return v;
}

function u32(o: Record<string, unknown>, key: string, where: string): number {
  const v = u53(o, key, where);
  if (v > U32_MAX) bad(`${where}: ${key} must fit 32 bits`);
  return v;
}

function time(o: Record<string, unknown>, key: string, where: string): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) bad(`${where}: ${key} must be a time in ms since 1970, got ${JSON.stringify(v)}`);
  return v;
}

function mode(o: Record<string, unknown>, key: string, where: string): number {
  const v = u53(o, key, where);
  if (v > 0o7777) bad(`${where}: ${key} holds permission bits only (≤ 0o7777)`);
  return v;
}

export function isHash(x: unknown): x is string {
  return typeof x === 'string' && HASH_RE.test(x);
}

/** False when `s` holds a lone surrogate, which no UTF-8 encoding can carry. */
export function isWellFormedUnicode(s: string): boolean {
  return !/\p{Surrogate}/u.test(s);
}

/**
 * A directory entry name the hub accepts: not empty, not `.` or `..`, no `/` or NUL, well-formed
 * Unicode (a lone surrogate would not survive UTF-8), at most 255 bytes. Returns why not, or null.
 */
/** The most names a `viewKept` list carries (a file's names beyond it are left out). */
export const VIEW_KEPT_NAMES_MAX = 64;

export function unsafeNameReason(name: unknown): string | null {
  if (typeof name !== 'string') return 'a name must be a string';
  if (name === '') return 'empty name';
  if (name === '.' || name === '..') return `name ${JSON.stringify(name)} is reserved`;
  if (name.includes('/')) return `name ${JSON.stringify(name)} contains '/'`;
  if (name.includes('\0')) return `name ${JSON.stringify(name)} contains NUL`;
  if (!isWellFormedUnicode(name)) return 'name is not well-formed Unicode';
  if (Buffer.byteLength(name) > NAME_MAX_BYTES) return `name longer than ${NAME_MAX_BYTES} bytes`;
  return null;
}

function name(o: Record<string, unknown>, key: string, where: string): string {
  const why = unsafeNameReason(o[key]);
  if (why !== null) throw new ProtocolViolation('UNSAFE_NAME', `${where}: ${key}: ${why}`);
  return o[key] as string;
}

function blocks(o: Record<string, unknown>, size: number, where: string): BlockRef[] {
  const v = o.blocks;
  if (!Array.isArray(v)) bad(`${where}: blocks must be an array of [index, sha256]`);
  const limit = Math.ceil(size / BLOCK_BYTES);
  const out: BlockRef[] = [];
  let prev = -1;
  for (const b of v as unknown[]) {
    if (!Array.isArray(b) || b.length !== 2 || !isU53(b[0]) || !isHash(b[1])) bad(`${where}: a block must be [index, sha256 hex], got ${JSON.stringify(b)}`);
    const [idx, hash] = b as [number, string];
    if (idx <= prev) bad(`${where}: block indexes must ascend`);
    if (idx >= limit) bad(`${where}: block ${idx} lies past the file's size ${size}`);
    out.push([idx, hash]);
    prev = idx;
  }
  return out;
}

function optional<T>(o: Record<string, unknown>, key: string, read: (o: Record<string, unknown>, key: string, where: string) => T, where: string): T | undefined {
  return o[key] === undefined ? undefined : read(o, key, where);
}

/** Checks one op and returns a clean copy holding only its known fields. */
export function parseWireOp(raw: unknown, where: string): WireOp {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) bad(`${where}: an op must be an object`);
  const o = raw as Record<string, unknown>;
  switch (o.t) {
    case 'mknode': {
      const kind = o.kind;
      if (kind !== 'file' && kind !== 'dir' && kind !== 'symlink') bad(`${where}: kind must be file, dir or symlink`);
      const op: WireOp = { t: 'mknode', parent: u53(o, 'parent', where), name: name(o, 'name', where), ino: u53(o, 'ino', where), kind, mode: mode(o, 'mode', where), uid: u32(o, 'uid', where), gid: u32(o, 'gid', where), timeMs: time(o, 'timeMs', where) };
      if (kind === 'symlink') {
        const target = o.target;
        if (typeof target !== 'string' || target === '' || target.includes('\0') || !isWellFormedUnicode(target) || Buffer.byteLength(target) > SYMLINK_TARGET_MAX_BYTES) bad(`${where}: a symlink needs a target of 1..${SYMLINK_TARGET_MAX_BYTES} bytes without NUL`);
        op.target = target;
      }
      return op;
    }
    case 'link':
    case 'unlink':
    case 'rmdir':
      return { t: o.t, parent: u53(o, 'parent', where), name: name(o, 'name', where), ino: u53(o, 'ino', where), timeMs: time(o, 'timeMs', where) };
    case 'rename': {
      const flags = o.flags;
      if (flags !== 0 && flags !== 1 && flags !== 2) bad(`${where}: flags must be 0, 1 (NOREPLACE) or 2 (EXCHANGE)`);
      return {
        t: 'rename',
        parent: u53(o, 'parent', where),
        name: name(o, 'name', where),
        ino: u53(o, 'ino', where),
        newParent: u53(o, 'newParent', where),
        newName: name(o, 'newName', where),
        dstIno: u53(o, 'dstIno', where),
        flags,
        timeMs: time(o, 'timeMs', where),
      };
    }
    case 'content': {
      const size = u53(o, 'size', where);
      return { t: 'content', ino: u53(o, 'ino', where), size, blocks: blocks(o, size, where), timeMs: time(o, 'timeMs', where) };
    }
    case 'setattr': {
      const op: WireOp = { t: 'setattr', ino: u53(o, 'ino', where), timeMs: time(o, 'timeMs', where) };
      const m = optional(o, 'mode', mode, where);
      const uid = optional(o, 'uid', u32, where);
      const gid = optional(o, 'gid', u32, where);
      const atimeMs = optional(o, 'atimeMs', time, where);
      const mtimeMs = optional(o, 'mtimeMs', time, where);
      if (m !== undefined) op.mode = m;
      if (uid !== undefined) op.uid = uid;
      if (gid !== undefined) op.gid = gid;
      if (atimeMs !== undefined) op.atimeMs = atimeMs;
      if (mtimeMs !== undefined) op.mtimeMs = mtimeMs;
      return op;
    }
    case 'forget':
      return { t: 'forget', ino: u53(o, 'ino', where) };
    default:
      return bad(`${where}: unknown op ${JSON.stringify(o.t)} (write and truncate travel as content)`);
  }
}

/** The chunk hashes an op's content refers to. */
export function hashesOf(op: WireOp): string[] {
  return op.t === 'content' ? op.blocks.map((b) => b[1]) : [];
}
