/**
 * A queue on an array with a moving head: O(1) push and shift without Array#shift's copying.
 * The consumed front is dropped once it is most of the array.
 */
export class Fifo<T> {
  private items: T[] = [];
  private head = 0;

  get size(): number {
    return this.items.length - this.head;
  }

  /** The k-th item from the front (0 is the front), or undefined. */
  at(k: number): T | undefined {
    return this.head + k < this.items.length ? this.items[this.head + k] : undefined;
  }

  /** The last item, or undefined. */
  last(): T | undefined {
    return this.size > 0 ? this.items[this.items.length - 1] : undefined;
  }

  push(item: T): void {
    this.items.push(item);
  }

  /** Removes and returns the front item. */
  shift(): T | undefined {
    if (this.size === 0) return undefined;
    const item = this.items[this.head];
    this.drop(1);
    return item;
  }

  /** Removes `n` items from the front. */
  drop(n: number): void {
    const end = Math.min(this.items.length, this.head + n);
    // Let go of consumed items at once (a written frame pins its whole arena slab).
    for (let i = this.head; i < end; i++) (this.items as (T | undefined)[])[i] = undefined;
    this.head = end;
    this.compact();
  }

  /** Removes and returns the last item. */
  pop(): T | undefined {
    const item = this.size > 0 ? this.items.pop() : undefined;
    this.compact();
    return item;
  }

  clear(): void {
    this.items = [];
    this.head = 0;
  }

  private compact(): void {
    if (this.head === this.items.length) this.clear();
    else if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }
}
