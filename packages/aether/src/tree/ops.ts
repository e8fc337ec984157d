/**
 * The operations a mount journals. Each carries every value needed to apply it
 * deterministically (new inode numbers, owners, timestamps), so replaying the journal into the
 * in-memory view, the embedded store or a hub gives the same tree.
 */
import { SlabAllocator } from '../runtime/infra/slab.js';
export type Ino = number;
export const ROOT_INO = 1;
export type Kind = 'file' | 'dir' | 'symlink';

export const RENAME_NOREPLACE = 1;
export const RENAME_EXCHANGE = 2;

export type Op =
  | { t: 'mknode'; parent: Ino; name: string; ino: Ino; kind: Kind; mode: number; uid: number; gid: number; target?: string; timeMs: number }
  | { t: 'link'; parent: Ino; name: string; ino: Ino; timeMs: number }
  // `ino` (and `dstIno`, 0: none): the inodes the mount saw under the names, so a hub applies the
  // removal to them even if another mount's node took the name meanwhile (absent in older journals).
  | { t: 'unlink'; parent: Ino; name: string; timeMs: number; ino?: Ino }
  | { t: 'rmdir'; parent: Ino; name: string; timeMs: number; ino?: Ino }
  | { t: 'rename'; parent: Ino; name: string; newParent: Ino; newName: string; flags: number; timeMs: number; ino?: Ino; dstIno?: Ino }
  | { t: 'write'; ino: Ino; offset: number; data: Buffer; timeMs: number }
  | { t: 'truncate'; ino: Ino; size: number; timeMs: number }
  | { t: 'setattr'; ino: Ino; mode?: number; uid?: number; gid?: number; atimeMs?: number; mtimeMs?: number; timeMs: number }
  | { t: 'forget'; ino: Ino };

/** Journal record type for an encoded op. */
export const OP_RECORD_TYPE = 1;

/** Payloads are cut from shared slabs (see SlabAllocator): a 128 KiB write costs no allocation of its own. */
const payloads = new SlabAllocator(8 * 1024 * 1024);

/**
 * Encodes an op as a journal payload: u32 header length, JSON header, then the write data. The
 * result is the caller's to keep (it shares a slab only with other payloads, never rewritten).
 */
export function encodeOp(op: Op): Buffer {
  const data = op.t === 'write' ? op.data : undefined;
  const header = Buffer.from(JSON.stringify(op.t === 'write' ? { ...op, data: undefined } : op));
  const out = payloads.alloc(4 + header.length + (data?.length ?? 0));
  out.writeUInt32LE(header.length, 0);
  header.copy(out, 4);
  if (data) data.copy(out, 4 + header.length);
  return out;
}

export function decodeOp(buf: Buffer): Op {
  const len = buf.readUInt32LE(0);
  const op = JSON.parse(buf.subarray(4, 4 + len).toString('utf8')) as Op;
  if (op.t === 'write') op.data = buf.subarray(4 + len);
  return op;
}
