/**
 * One queue per file id: operations on a file run one at a time, in call order, so disk writes
 * and the extents that describe them can never be seen half done. Different files run in parallel.
 */
export class FileLocks {
  private readonly tails = new Map<number, Promise<unknown>>();

  run<T>(fileId: number, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(fileId);
    const next = prev ? prev.then(fn, fn) : fn();
    const tail = next.catch(() => undefined);
    this.tails.set(fileId, tail);
    void tail.then(() => {
      if (this.tails.get(fileId) === tail) this.tails.delete(fileId);
    });
    return next;
  }

  /** Resolves once every operation queued so far has finished. */
  async idle(): Promise<void> {
    while (this.tails.size > 0) await Promise.all([...this.tails.values()]);
  }
}
