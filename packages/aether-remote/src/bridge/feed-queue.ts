/**
 * A queue read as an async iterator by one consumer. Its bound is the feed's window: the hub
 * sends no more than the client granted (`follow.window`, `feed-credit`).
 */
export class FeedQueue<T> {
  private readonly items: T[] = [];
  private waiter: ((r: IteratorResult<T>) => void) | undefined;
  private ended = false;

  get length(): number {
    return this.items.length;
  }

  /** How many items not taken yet satisfy `pred`. */
  count(pred: (item: T) => boolean): number {
    return this.items.reduce((n, item) => (pred(item) ? n + 1 : n), 0);
  }

  push(item: T): void {
    if (this.ended) return;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w({ value: item, done: false });
      return;
    }
    this.items.push(item);
  }

  /** Drops every item not taken yet (the feed starts over). */
  clear(): void {
    this.items.length = 0;
  }

  end(): void {
    this.ended = true;
    this.items.length = 0;
    this.waiter?.({ value: undefined, done: true });
    this.waiter = undefined;
  }

  next(): Promise<IteratorResult<T>> {
    const item = this.items.shift();
    if (item !== undefined) return Promise.resolve({ value: item, done: false });
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => (this.waiter = resolve));
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return {
      next: () => this.next(),
      return: () => {
        this.end();
        return Promise.resolve({ value: undefined, done: true });
      },
      [Symbol.asyncIterator]() {
        return this;
      },
    };
  }
}
