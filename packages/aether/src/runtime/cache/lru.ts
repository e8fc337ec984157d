/** Links an item carries to sit in an `LruList`; intrusive, so touching allocates nothing. */
export interface LruNode<T> {
  lruPrev: T | null;
  lruNext: T | null;
  inLru: boolean;
}

/** Least recently used first. All operations are O(1). */
export class LruList<T extends LruNode<T>> {
  private head: T | null = null;
  private tail: T | null = null;
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** Least recently used item, or null. */
  get oldest(): T | null {
    return this.head;
  }

  /** Marks `node` as the most recently used (adding it if absent). */
  touch(node: T): void {
    if (node.inLru) {
      if (this.tail === node) return;
      this.remove(node);
    }
    node.lruPrev = this.tail;
    node.lruNext = null;
    if (this.tail) this.tail.lruNext = node;
    else this.head = node;
    this.tail = node;
    node.inLru = true;
    this.count++;
  }

  remove(node: T): void {
    if (!node.inLru) return;
    if (node.lruPrev) node.lruPrev.lruNext = node.lruNext;
    else this.head = node.lruNext;
    if (node.lruNext) node.lruNext.lruPrev = node.lruPrev;
    else this.tail = node.lruPrev;
    node.lruPrev = null;
    node.lruNext = null;
    node.inLru = false;
    this.count--;
  }
}
