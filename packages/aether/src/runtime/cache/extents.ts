/*
 * The byte ranges one cache block holds, as a sorted list of non-overlapping extents with
 * block-relative offsets. An extent is clean (`seq === CLEAN`) or dirty, tagged with the journal
 * sequence number of the write that dirtied it. Every operation is pure and synchronous and reports
 * how the dirty and clean byte counts moved, so the cache's accounting is exact by construction.
 */

export const CLEAN = -1;
/** `overlay` decisions besides a new seq: no data here, or leave this piece as it is. */
export const HOLE = -2;
export const KEEP = -3;

export interface Extent {
  readonly start: number;
  readonly end: number;
  /** CLEAN, or the journal seq (>= 0) of the write that made these bytes dirty. */
  readonly seq: number;
}

export interface OverlayResult {
  extents: Extent[];
  dirtyDelta: number;
  cleanDelta: number;
}

function push(out: Extent[], start: number, end: number, seq: number): void {
  if (start >= end) return;
  const last = out[out.length - 1];
  if (last && last.end === start && last.seq === seq) out[out.length - 1] = { start: last.start, end, seq };
  else out.push({ start, end, seq });
}

/**
 * Rewrites [start, end): `decide` is called for every piece of it (existing extents and the holes
 * between them, in order) with the piece's current seq (or HOLE) and returns its new seq, HOLE or
 * KEEP. Pieces it changes to data (not HOLE, not KEEP) are appended to `changed` as start/end pairs.
 */
export function overlay(exts: readonly Extent[], start: number, end: number, decide: (cur: number) => number, changed?: number[]): OverlayResult {
  const out: Extent[] = [];
  let dirtyDelta = 0;
  let cleanDelta = 0;
  const apply = (s: number, e: number, cur: number): void => {
    const d = decide(cur);
    const next = d === KEEP ? cur : d;
    if (next !== cur) {
      const len = e - s;
      if (cur === CLEAN) cleanDelta -= len;
      else if (cur >= 0) dirtyDelta -= len;
      if (next === CLEAN) cleanDelta += len;
      else if (next >= 0) dirtyDelta += len;
      if (changed && next !== HOLE) changed.push(s, e);
    }
    if (next !== HOLE) push(out, s, e, next);
  };
  let i = 0;
  while (i < exts.length && (exts[i] as Extent).end <= start) out.push(exts[i++] as Extent);
  let pos = start;
  while (pos < end) {
    const x = exts[i];
    if (!x || x.start >= end) {
      apply(pos, end, HOLE);
      break;
    }
    if (x.start > pos) {
      apply(pos, x.start, HOLE);
      pos = x.start;
      continue;
    }
    push(out, x.start, pos, x.seq);
    const e = Math.min(x.end, end);
    apply(pos, e, x.seq);
    push(out, e, x.end, x.seq);
    pos = e;
    i++;
  }
  for (; i < exts.length; i++) {
    const x = exts[i] as Extent;
    push(out, x.start, x.end, x.seq);
  }
  return { extents: out, dirtyDelta, cleanDelta };
}

/** Bytes of [start, end) that are not dirty: what a write there adds to the dirty count at most. */
export function notDirtyBytes(exts: readonly Extent[], start: number, end: number): number {
  let dirty = 0;
  for (const x of exts) {
    if (x.end <= start) continue;
    if (x.start >= end) break;
    if (x.seq >= 0) dirty += Math.min(x.end, end) - Math.max(x.start, start);
  }
  return end - start - dirty;
}

/** Pieces of [start, end) that a write with `seq` replaces: everything but bytes dirtied by a later write. */
export function writablePieces(exts: readonly Extent[], start: number, end: number, seq: number): number[] {
  const pieces: number[] = [];
  let pos = start;
  for (const x of exts) {
    if (x.end <= pos) continue;
    if (x.start >= end) break;
    if (x.seq > seq) {
      if (x.start > pos) pieces.push(pos, x.start);
      pos = Math.min(x.end, end);
    }
  }
  if (pos < end) pieces.push(pos, end);
  return pieces;
}

/** Pieces of [start, end) holding no data: what clean data fetched from the store may fill. */
export function holePieces(exts: readonly Extent[], start: number, end: number): number[] {
  const pieces: number[] = [];
  let pos = start;
  for (const x of exts) {
    if (x.end <= pos) continue;
    if (x.start >= end) break;
    if (x.start > pos) pieces.push(pos, x.start);
    pos = Math.min(x.end, end);
  }
  if (pos < end) pieces.push(pos, end);
  return pieces;
}

/** Smallest dirty seq, or Infinity when nothing is dirty. */
export function minDirtySeq(exts: readonly Extent[]): number {
  let min = Infinity;
  for (const x of exts) if (x.seq >= 0 && x.seq < min) min = x.seq;
  return min;
}

/** Clean extents as flat start/end pairs (the persisted form). */
export function cleanPieces(exts: readonly Extent[]): number[] {
  const out: number[] = [];
  for (const x of exts) if (x.seq === CLEAN) out.push(x.start, x.end);
  return out;
}
