/**
 * The units of one file that hold data, as sorted, disjoint [start, end) pairs flattened into one
 * array, and their total: what never was written is a hole, so a sparse file reports few blocks.
 * A mark finds its place by binary search and replaces only the pairs it touches: a random write
 * into a file of many separate written regions cost a rebuild of all of them (4.8 ms a write after
 * 60,000 random 4 KiB writes into a sparse 8 GiB file, a scale review).
 */
export class AllocatedRanges {
  private readonly pairs: number[] = [];
  /** Sum of end - start over the pairs. */
  units = 0;

  /** Marks [start, end) as holding data. */
  mark(start: number, end: number): void {
    if (end <= start) return;
    const p = this.pairs;
    // The first pair that ends at or after `start` (touching pairs merge).
    let lo = 0;
    let hi = p.length / 2;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (p[2 * mid + 1]! < start) lo = mid + 1;
      else hi = mid;
    }
    let s = start;
    let e = end;
    let j = lo;
    for (; 2 * j < p.length && p[2 * j]! <= end; j++) {
      s = Math.min(s, p[2 * j]!);
      e = Math.max(e, p[2 * j + 1]!);
      this.units -= p[2 * j + 1]! - p[2 * j]!;
    }
    p.splice(2 * lo, 2 * (j - lo), s, e);
    this.units += e - s;
  }

  /** Drops every unit at or past `end`. */
  truncate(end: number): void {
    const p = this.pairs;
    let keep = 0;
    while (2 * keep < p.length && p[2 * keep]! < end) keep++;
    p.length = 2 * keep;
    if (keep > 0) p[2 * keep - 1] = Math.min(p[2 * keep - 1]!, end);
    this.units = 0;
    for (let i = 0; i < p.length; i += 2) this.units += p[i + 1]! - p[i]!;
  }

  /** The pairs, flattened (for tests). */
  toArray(): number[] {
    return [...this.pairs];
  }
}
