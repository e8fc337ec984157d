import assert from 'node:assert/strict';

interface Waiter {
  seq: number;
  resolve: (seq: number) => void;
  reject: (err: Error) => void;
}

/**
 * Callers waiting for a sequence number to be reached (written, or made durable). Waiters
 * arrive in sequence order, so a FIFO with a moving head releases them in O(1) each.
 */
export class SeqWaiters {
  private items: Waiter[] = [];
  private head = 0;

  get size(): number {
    return this.items.length - this.head;
  }

  /** Sequence number of the first waiter, or null. */
  get firstSeq(): number | null {
    return this.size === 0 ? null : (this.items[this.head] as Waiter).seq;
  }

  wait(seq: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const last = this.items[this.items.length - 1];
      assert.ok(this.size === 0 || !last || last.seq <= seq, 'waiters must arrive in sequence order');
      this.items.push({ seq, resolve, reject });
    });
  }

  /** Resolves every waiter up to and including `seq`. */
  release(seq: number): void {
    while (this.head < this.items.length && (this.items[this.head] as Waiter).seq <= seq) {
      const w = this.items[this.head++] as Waiter;
      w.resolve(w.seq);
    }
    this.compact();
  }

  /** Rejects every waiter up to and including `seq` (all of them by default). */
  reject(err: Error, seq = Number.POSITIVE_INFINITY): void {
    while (this.head < this.items.length && (this.items[this.head] as Waiter).seq <= seq) {
      (this.items[this.head++] as Waiter).reject(err);
    }
    this.compact();
  }

  /** Rejects every waiter above `seq`. */
  rejectAfter(err: Error, seq: number): void {
    while (this.items.length > this.head && (this.items[this.items.length - 1] as Waiter).seq > seq) (this.items.pop() as Waiter).reject(err);
    this.compact();
  }

  private compact(): void {
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }
}
