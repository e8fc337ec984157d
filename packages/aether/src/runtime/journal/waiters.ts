import assert from 'node:assert/strict';
import { Fifo } from './fifo.js';

interface Waiter {
  seq: number;
  resolve: (seq: number) => void;
  reject: (err: Error) => void;
}

/**
 * Callers waiting for a sequence number to be reached (written, or made durable). Waiters
 * arrive in sequence order, so they are released from the front of a FIFO.
 */
export class SeqWaiters {
  private readonly items = new Fifo<Waiter>();

  get size(): number {
    return this.items.size;
  }

  /** Sequence number of the first waiter, or null. */
  get firstSeq(): number | null {
    return this.items.at(0)?.seq ?? null;
  }

  wait(seq: number): Promise<number> {
    return new Promise((resolve, reject) => {
      assert.ok((this.items.last()?.seq ?? seq) <= seq, 'waiters must arrive in sequence order');
      this.items.push({ seq, resolve, reject });
    });
  }

  /** Resolves every waiter up to and including `seq`. */
  release(seq: number): void {
    for (let w = this.items.at(0); w && w.seq <= seq; w = this.items.at(0)) {
      this.items.shift();
      w.resolve(w.seq);
    }
  }

  /** Rejects every waiter up to and including `seq` (all of them by default). */
  reject(err: Error, seq = Number.POSITIVE_INFINITY): void {
    for (let w = this.items.at(0); w && w.seq <= seq; w = this.items.at(0)) {
      this.items.shift();
      w.reject(err);
    }
  }

  /** Rejects every waiter above `seq`. */
  rejectAfter(err: Error, seq: number): void {
    for (let w = this.items.last(); w && w.seq > seq; w = this.items.last()) {
      this.items.pop();
      w.reject(err);
    }
  }
}
