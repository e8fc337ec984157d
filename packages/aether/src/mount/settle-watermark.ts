/**
 * Operations tagged with journal seqs, issued in seq order and settling in any order: `through(seq)`
 * waits until every one tagged ≤ seq has settled. The Vfs answers a write once its journal record
 * is in the OS and lets the cache update run behind; a commit must not overtake that update, or
 * a crash right after leaves the cache without bytes the journal no longer holds (and, in bridge
 * mode, clean cached bytes older than the hub's).
 */
export class SettleWatermark {
  private readonly seqs: number[] = [];
  private head = 0;
  /** Settled but not yet at the head, by seq (one seq may tag several operations). */
  private readonly done = new Map<number, number>();
  private waiters: { seq: number; resolve: () => void }[] = [];

  /** `p` must be tagged with a seq ≥ every seq tracked before it. */
  track(seq: number, p: Promise<unknown>): void {
    this.seqs.push(seq);
    const settle = (): void => this.settled(seq);
    p.then(settle, settle);
  }

  /** Null when nothing tagged ≤ `seq` is in flight (no promise, no turn to wait). */
  through(seq: number): Promise<void> | null {
    if (this.oldest() > seq) return null;
    return new Promise((resolve) => this.waiters.push({ seq, resolve }));
  }

  private oldest(): number {
    return this.head < this.seqs.length ? this.seqs[this.head]! : Infinity;
  }

  private settled(seq: number): void {
    this.done.set(seq, (this.done.get(seq) ?? 0) + 1);
    for (let s = this.oldest(), n = this.done.get(s); n !== undefined; s = this.oldest(), n = this.done.get(s)) {
      if (n === 1) this.done.delete(s);
      else this.done.set(s, n - 1);
      this.head++;
    }
    if (this.head > 1024 && this.head * 2 > this.seqs.length) {
      this.seqs.splice(0, this.head);
      this.head = 0;
    }
    if (!this.waiters.length) return;
    const oldest = this.oldest();
    const ready = this.waiters.filter((w) => w.seq < oldest);
    if (!ready.length) return;
    this.waiters = this.waiters.filter((w) => w.seq >= oldest);
    for (const w of ready) w.resolve();
  }
}
