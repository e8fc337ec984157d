import assert from 'node:assert/strict';
import { crc32 } from 'node:zlib';
import type { JournalFile } from './fs-layer.js';
import { readU64, writeU64 } from './record.js';

/**
 * A segment file starts with a 24-byte header, little-endian:
 *
 *   0  8 bytes  magic "AETHJRNL"
 *   8  u32      format version (1)
 *  12  u64      sequence number of the segment's first record
 *  20  u32      CRC-32 of bytes 0..20
 *
 * and is named after its first sequence number, zero-padded to 20 digits, so that the name
 * order is the log order: `00000000000000000001.wal`.
 */
export const SEGMENT_HEADER_BYTES = 24;
export const SEGMENT_FORMAT_VERSION = 1;
const MAGIC = Buffer.from('AETHJRNL', 'latin1');
const NAME_RE = /^(\d{20})\.wal$/;

export function segmentName(firstSeq: number): string {
  return `${String(firstSeq).padStart(20, '0')}.wal`;
}

/** The first sequence number a segment file name stands for, or null for any other file. */
export function parseSegmentName(name: string): number | null {
  const m = NAME_RE.exec(name);
  if (!m) return null;
  const n = Number(m[1]);
  return Number.isSafeInteger(n) && n > 0 ? n : null;
}

export function encodeSegmentHeader(firstSeq: number): Buffer {
  const b = Buffer.alloc(SEGMENT_HEADER_BYTES);
  MAGIC.copy(b, 0);
  b.writeUInt32LE(SEGMENT_FORMAT_VERSION, 8);
  writeU64(b, firstSeq, 12);
  b.writeUInt32LE(crc32(b.subarray(0, 20)), 20);
  return b;
}

/** Checks a segment header; returns a reason when it is not one for `firstSeq`. */
export function checkSegmentHeader(b: Buffer, firstSeq: number): string | null {
  if (b.length < SEGMENT_HEADER_BYTES) return 'segment header incomplete';
  if (!b.subarray(0, 8).equals(MAGIC)) return 'not a journal segment (bad magic)';
  if (b.readUInt32LE(20) !== crc32(b.subarray(0, 20))) return 'segment header checksum mismatch';
  const version = b.readUInt32LE(8);
  if (version !== SEGMENT_FORMAT_VERSION) return `unsupported segment format version ${version}`;
  if (readU64(b, 12) !== firstSeq) return `segment header says first sequence ${readU64(b, 12)}, the file name says ${firstSeq}`;
  return null;
}

/**
 * What the journal knows about one segment. Byte counts are offsets in the file: `sizeBytes`
 * covers every record placed in it (some may still wait in the write queue), `writtenBytes`
 * what the OS has, `syncedBytes` what a completed fdatasync covered.
 */
export class Segment {
  readonly name: string;
  lastSeq: number;
  sizeBytes: number;
  writtenBytes: number;
  syncedBytes: number;
  /** Open for writing while the segment takes records or holds bytes not yet synced. */
  file: JournalFile | null = null;
  /** No more records go into a retired segment; it closes once all its bytes are synced. */
  retired: boolean;
  /**
   * Set by a failed fdatasync: from here on the OS may have dropped the pages it was writing back
   * (Linux marks them clean and reports the error once), so they are written again before the retry.
   */
  suspectFrom: number | null = null;
  /** Disk blocks reserved for the file's bytes [0, reservedEnd) (`ReserveSpace`); 0 when none. */
  reservedEnd = 0;

  constructor(
    readonly firstSeq: number,
    opts: { lastSeq: number; sizeBytes: number; onDisk: boolean },
  ) {
    this.name = segmentName(firstSeq);
    this.lastSeq = opts.lastSeq;
    this.sizeBytes = opts.sizeBytes;
    // A recovered segment is complete on disk; a new one has nothing written until it is created.
    this.writtenBytes = opts.onDisk ? opts.sizeBytes : 0;
    this.syncedBytes = this.writtenBytes;
    this.retired = opts.onDisk;
  }

  get records(): number {
    return this.lastSeq - this.firstSeq + 1;
  }

  get dirty(): boolean {
    return this.file !== null && this.writtenBytes > this.syncedBytes;
  }

  /** Fully written, fully synced and taking no more records: its file can be closed. */
  get settled(): boolean {
    return this.retired && this.writtenBytes === this.sizeBytes && this.syncedBytes === this.writtenBytes;
  }
}

/** The segments in log order, with lookup by sequence number. */
export class SegmentList {
  private readonly items: Segment[] = [];

  get length(): number {
    return this.items.length;
  }

  get all(): readonly Segment[] {
    return this.items;
  }

  get last(): Segment | undefined {
    return this.items[this.items.length - 1];
  }

  get first(): Segment | undefined {
    return this.items[0];
  }

  push(seg: Segment): void {
    const last = this.last;
    assert.ok(!last || seg.firstSeq > last.lastSeq, 'segments must be added in log order');
    this.items.push(seg);
  }

  /** Removes `seg`, which must be the oldest segment (segments are released oldest first). */
  shift(seg: Segment): void {
    assert.equal(this.items[0], seg);
    this.items.shift();
  }

  remove(seg: Segment): void {
    const i = this.items.indexOf(seg);
    if (i >= 0) this.items.splice(i, 1);
  }

  /** The segment holding `seq`, if any. */
  find(seq: number): Segment | undefined {
    let lo = 0;
    let hi = this.items.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const s = this.items[mid] as Segment;
      if (seq < s.firstSeq) hi = mid - 1;
      else if (seq > s.lastSeq) lo = mid + 1;
      else return s;
    }
    return undefined;
  }
}
