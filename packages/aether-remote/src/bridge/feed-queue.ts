/**
 * A bounded queue read as an async iterator by one consumer. Past `highWater` items the producer
 * is told to stop reading (`onFull`), and told to go on (`onRoom`) once the consumer has taken it
 * down to half, so a slow consumer holds the socket back instead of growing memory without end.
 */
export class FeedQueue<T> {
  private readonly items: T[] = [];
  private waiter: ((r: IteratorResult<T>) => void) | undefined;
  private ended = false;
  private full = false;

  constructor(
    private readonly highWater: number,
    private readonly onFull: () => void,
    private readonly onRoom: () => void,
  ) {}

  get length(): number {
    return this.items.length;
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
    if (!this.full && this.items.length >= this.highWater) {
      this.full = true;
      this.onFull();
    }
  }

  /** Drops every item not taken yet (the feed starts over). */
  clear(): void {
    this.items.length = 0;
    if (this.full) {
      this.full = false;
      this.onRoom();
    }
  }

  end(): void {
    this.ended = true;
    this.items.length = 0;
    this.waiter?.({ value: undefined, done: true });
    this.waiter = undefined;
  }

  next(): Promise<IteratorResult<T>> {
    const item = this.items.shift();
    if (item !== undefined) {
      if (this.full && this.items.length <= this.highWater / 2) {
        this.full = false;
        this.onRoom();
      }
      return Promise.resolve({ value: item, done: false });
    }
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
