import assert from 'node:assert/strict';
import { SlabAllocator } from '../infra/slab.js';
import { crc32 } from '../infra/crc32.js';

/**
 * One journal record on disk, little-endian:
 *
 *   0  u32  payload length in bytes
 *   4  u32  CRC-32 of bytes 0..4 and 8..end (everything but the CRC itself)
 *   8  u64  sequence number
 *  16  u64  timestamp, ms since the epoch (from the journal's clock)
 *  24  u16  type (opaque to the journal; the mount defines the operations)
 *  26  u16  flags (reserved, always 0)
 *  28  u32  durable lag: this sequence number minus the highest one known durable (fsynced)
 *           when the record was appended; 0xFFFFFFFF when there is no such claim
 *  32       payload
 *
 * The CRC covers the length too, so a torn or flipped length cannot pass for a valid record.
 * The durable lag lets recovery tell damage to bytes that had been fsynced (corruption: refuse)
 * from damage to bytes that never were (a crash artifact: cut), see recovery.ts.
 */
export const RECORD_HEADER_BYTES = 32;
/** The largest payload one record may carry; a length above it on disk is corruption. */
export const RECORD_PAYLOAD_BYTES_MAX = 16 * 1024 * 1024;
export const RECORD_TYPE_MAX = 0xffff;
const NO_CLAIM = 0xffffffff;

const U32 = 2 ** 32;

export interface DecodedRecord {
  kind: 'record';
  seq: number;
  timestampMs: number;
  type: number;
  /** Highest sequence number known durable when the record was appended (0 when none). */
  durableSeq: number;
  /** A view into the buffer that was decoded; copy it to keep it. */
  payload: Buffer;
  /** Framed size: header plus payload. */
  bytes: number;
}

/** More bytes are needed than `available` holds: `needBytes` from the record's start. */
export interface ShortRecord {
  kind: 'short';
  needBytes: number;
}

export interface BadRecord {
  kind: 'bad';
  reason: string;
}

export type DecodeResult = DecodedRecord | ShortRecord | BadRecord;

/** Framed size of a record carrying `payloadBytes`. */
export function recordBytes(payloadBytes: number): number {
  return RECORD_HEADER_BYTES + payloadBytes;
}

export function writeU64(buf: Buffer, value: number, offset: number): void {
  assert.ok(Number.isSafeInteger(value) && value >= 0, `u64 field out of range: ${value}`);
  buf.writeUInt32LE(value % U32, offset);
  buf.writeUInt32LE(Math.floor(value / U32), offset + 4);
}

/** Reads a u64 as a number; values past 2^53 (never written by the journal) come back as NaN. */
export function readU64(buf: Buffer, offset: number): number {
  const hi = buf.readUInt32LE(offset + 4);
  if (hi >= 2 ** 21) return Number.NaN;
  return hi * U32 + buf.readUInt32LE(offset);
}

function frameCrc(frame: Buffer): number {
  return crc32(frame.subarray(8), crc32(frame.subarray(0, 4)));
}

/**
 * Record headers (and the copies of payloads the caller keeps) come from 8 MiB slabs
 * (runtime/infra/slab.ts): per 4 KiB append, allocation and garbage collection were a third of
 * the journal's own work.
 */
export class FrameArena extends SlabAllocator {
  constructor() {
    super(8 * 1024 * 1024);
  }
}

const oneOff = { alloc: (bytes: number): Buffer => Buffer.allocUnsafe(bytes) };

/**
 * Encodes the header of one record whose payload follows it on disk, from `arena` when given:
 * the payload itself is not copied (a frame is written as header and payload), so it must not
 * change until written. `durableSeq` is the highest sequence number already fsynced.
 */
export function encodeRecordHeader(
  seq: number,
  timestampMs: number,
  type: number,
  durableSeq: number,
  payload: Buffer,
  arena: { alloc(bytes: number): Buffer } = oneOff,
): Buffer {
  assert.ok(Number.isInteger(type) && type >= 0 && type <= RECORD_TYPE_MAX, `record type must be an integer in 0..${RECORD_TYPE_MAX}`);
  assert.ok(payload.length <= RECORD_PAYLOAD_BYTES_MAX);
  assert.ok(durableSeq >= 0 && durableSeq < seq, 'a record cannot be durable before it is written');
  const header = arena.alloc(RECORD_HEADER_BYTES);
  header.writeUInt32LE(payload.length, 0);
  writeU64(header, seq, 8);
  writeU64(header, Math.max(0, Math.floor(timestampMs)), 16);
  header.writeUInt16LE(type, 24);
  header.writeUInt16LE(0, 26);
  const lag = seq - durableSeq;
  header.writeUInt32LE(durableSeq === 0 || lag >= NO_CLAIM ? NO_CLAIM : lag, 28);
  header.writeUInt32LE(crc32(payload, crc32(header.subarray(8), crc32(header.subarray(0, 4)))), 4);
  return header;
}

/** One whole record in a buffer of its own (header and a copy of the payload). */
export function encodeRecord(seq: number, timestampMs: number, type: number, durableSeq: number, payload: Buffer): Buffer {
  return Buffer.concat([encodeRecordHeader(seq, timestampMs, type, durableSeq, payload), payload]);
}

/** Decodes the record starting at `offset`, looking at no more than `end`. */
export function decodeRecord(buf: Buffer, offset: number, end: number): DecodeResult {
  const available = end - offset;
  if (available < RECORD_HEADER_BYTES) return { kind: 'short', needBytes: RECORD_HEADER_BYTES };
  const payloadBytes = buf.readUInt32LE(offset);
  if (payloadBytes > RECORD_PAYLOAD_BYTES_MAX) return { kind: 'bad', reason: `payload length ${payloadBytes} above the limit` };
  const bytes = RECORD_HEADER_BYTES + payloadBytes;
  if (available < bytes) return { kind: 'short', needBytes: bytes };
  const frame = buf.subarray(offset, offset + bytes);
  if (frame.readUInt32LE(4) !== frameCrc(frame)) return { kind: 'bad', reason: 'checksum mismatch' };
  const seq = readU64(frame, 8);
  const timestampMs = readU64(frame, 16);
  if (!Number.isFinite(seq) || !Number.isFinite(timestampMs)) return { kind: 'bad', reason: 'sequence or timestamp out of range' };
  if (frame.readUInt16LE(26) !== 0) return { kind: 'bad', reason: 'unknown record flags' };
  const lag = frame.readUInt32LE(28);
  if (lag === 0 || (lag !== NO_CLAIM && lag >= seq)) return { kind: 'bad', reason: 'durable lag out of range' };
  const durableSeq = lag === NO_CLAIM ? 0 : seq - lag;
  return { kind: 'record', seq, timestampMs, type: frame.readUInt16LE(24), durableSeq, payload: frame.subarray(RECORD_HEADER_BYTES), bytes };
}

/**
 * The highest durability claim of any valid record with a sequence number above `afterSeq`
 * that starts anywhere in `buf[from..end)` (0 when there is none). Recovery asks this about
 * the bytes after a bad record: a valid record there that claims a sequence number at or past
 * the bad spot as durable proves the damage hit fsynced data.
 */
export function maxClaimAfter(buf: Buffer, from: number, end: number, afterSeq: number): number {
  let claim = 0;
  for (let p = from; p + RECORD_HEADER_BYTES <= end; p++) {
    // Cheap filters first: almost every position fails on the sequence number or the length.
    const seq = readU64(buf, p + 8);
    if (!(seq > afterSeq)) continue;
    if (RECORD_HEADER_BYTES + buf.readUInt32LE(p) > end - p) continue;
    const r = decodeRecord(buf, p, end);
    if (r.kind !== 'record') continue;
    claim = Math.max(claim, r.durableSeq);
    p += r.bytes - 1;
  }
  return claim;
}
