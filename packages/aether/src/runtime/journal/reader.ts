import type { JournalFile } from './fs-layer.js';
import { decodeRecord, type DecodedRecord } from './record.js';

const CHUNK_BYTES = 1024 * 1024;

export type StreamResult =
  | (DecodedRecord & { offset: number })
  | { kind: 'end'; offset: number }
  /** The bytes from `offset` to the end do not hold a whole record. */
  | { kind: 'short'; offset: number }
  | { kind: 'bad'; offset: number; reason: string };

/**
 * Reads records one after another from `start` up to `end` (exclusive) of a segment file,
 * through a buffer of about a megabyte that grows only for a record larger than it.
 * Payloads are views into that buffer, valid until the next call.
 */
export class RecordStream {
  private buf: Buffer;
  /** File offset of `buf[0]`. */
  private bufStart: number;
  private bufLen = 0;
  private pos: number;
  /** Where reading stops: `end`, or sooner if the file turns out shorter. */
  private limit: number;

  constructor(
    private readonly file: JournalFile,
    start: number,
    end: number,
  ) {
    this.buf = Buffer.allocUnsafe(Math.max(64, Math.min(CHUNK_BYTES, end - start)));
    this.bufStart = start;
    this.pos = start;
    this.limit = end;
  }

  /** File offset of the next record. */
  get offset(): number {
    return this.pos;
  }

  async next(): Promise<StreamResult> {
    for (;;) {
      if (this.pos >= this.limit) return { kind: 'end', offset: this.pos };
      const at = this.pos - this.bufStart;
      const r = decodeRecord(this.buf, at, this.bufLen);
      if (r.kind === 'record') {
        this.pos += r.bytes;
        return { ...r, offset: this.pos - r.bytes };
      }
      if (r.kind === 'bad') return { kind: 'bad', offset: this.pos, reason: r.reason };
      if (this.bufStart + this.bufLen >= this.limit) return { kind: 'short', offset: this.pos };
      await this.fill(r.needBytes);
    }
  }

  /** Moves the unread bytes to the front of the buffer and reads until `needBytes` are there or the end is reached. */
  private async fill(needBytes: number): Promise<void> {
    const keep = this.bufLen - (this.pos - this.bufStart);
    const want = Math.min(Math.max(needBytes, CHUNK_BYTES), this.limit - this.pos);
    if (want > this.buf.length) {
      const bigger = Buffer.allocUnsafe(want);
      this.buf.copy(bigger, 0, this.pos - this.bufStart, this.bufLen);
      this.buf = bigger;
    } else {
      this.buf.copy(this.buf, 0, this.pos - this.bufStart, this.bufLen);
    }
    this.bufStart = this.pos;
    this.bufLen = keep;
    while (this.bufLen < Math.min(needBytes, this.limit - this.pos) || this.bufLen === keep) {
      const room = Math.min(this.buf.length - this.bufLen, this.limit - (this.bufStart + this.bufLen));
      if (room <= 0) return;
      const n = await this.file.read(this.buf, this.bufLen, room, this.bufStart + this.bufLen);
      if (n === 0) {
        // The file is shorter than `end` said: what is there is all there is.
        this.limit = this.bufStart + this.bufLen;
        return;
      }
      this.bufLen += n;
    }
  }
}
