import assert from 'node:assert/strict';

/**
 * The entries appended but not yet committed, in sequence order: size, timestamp and file offset
 * of each, in a ring of typed arrays (20 bytes an entry, no object per entry). It keeps the
 * pending figures exact in O(1) for append and O(k) for a commit of k entries.
 */
export class PendingIndex {
  private capacity = 1024;
  private sizes = new Uint32Array(this.capacity);
  private timestamps = new Float64Array(this.capacity);
  private offsets = new Float64Array(this.capacity);
  private head = 0;
  private n = 0;
  private total = 0;
  /** Sequence number of the entry at `head`; the next entry to push when the index is empty. */
  private firstSeq: number;

  constructor(nextSeq: number) {
    this.firstSeq = nextSeq;
  }

  get count(): number {
    return this.n;
  }

  get bytes(): number {
    return this.total;
  }

  /** Sequence number of the oldest pending entry, or null. */
  get oldestSeq(): number | null {
    return this.n === 0 ? null : this.firstSeq;
  }

  get oldestTimestampMs(): number | null {
    return this.n === 0 ? null : (this.timestamps[this.head] as number);
  }

  /** Sequence number the next pushed entry must carry. */
  get nextSeq(): number {
    return this.firstSeq + this.n;
  }

  push(seq: number, bytes: number, timestampMs: number, offset: number): void {
    assert.equal(seq, this.nextSeq, 'pending entries must be pushed in sequence');
    if (this.n === this.capacity) this.grow();
    const i = (this.head + this.n) & (this.capacity - 1);
    this.sizes[i] = bytes;
    this.timestamps[i] = timestampMs;
    this.offsets[i] = offset;
    this.n++;
    this.total += bytes;
  }

  /** Drops every entry up to and including `seq` (they were committed). */
  dropThrough(seq: number): void {
    while (this.n > 0 && this.firstSeq <= seq) {
      this.total -= this.sizes[this.head] as number;
      this.head = (this.head + 1) & (this.capacity - 1);
      this.n--;
      this.firstSeq++;
    }
  }

  /** Drops every entry after `seq` (they were never written). */
  dropAfter(seq: number): void {
    while (this.n > 0 && this.firstSeq + this.n - 1 > seq) {
      this.n--;
      this.total -= this.sizes[(this.head + this.n) & (this.capacity - 1)] as number;
    }
  }

  /** Framed size of a pending entry, or null when `seq` is not pending. */
  sizeOf(seq: number): number | null {
    if (seq < this.firstSeq || seq >= this.firstSeq + this.n) return null;
    return this.sizes[(this.head + (seq - this.firstSeq)) & (this.capacity - 1)] as number;
  }

  /** File offset of a pending entry within its segment, or null when `seq` is not pending. */
  offsetOf(seq: number): number | null {
    if (seq < this.firstSeq || seq >= this.firstSeq + this.n) return null;
    return this.offsets[(this.head + (seq - this.firstSeq)) & (this.capacity - 1)] as number;
  }

  private grow(): void {
    const cap = this.capacity * 2;
    const sizes = new Uint32Array(cap);
    const timestamps = new Float64Array(cap);
    const offsets = new Float64Array(cap);
    for (let k = 0; k < this.n; k++) {
      const i = (this.head + k) & (this.capacity - 1);
      sizes[k] = this.sizes[i] as number;
      timestamps[k] = this.timestamps[i] as number;
      offsets[k] = this.offsets[i] as number;
    }
    this.capacity = cap;
    this.sizes = sizes;
    this.timestamps = timestamps;
    this.offsets = offsets;
    this.head = 0;
  }
}
