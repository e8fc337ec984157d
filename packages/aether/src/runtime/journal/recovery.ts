import { join } from 'node:path';
import { AetherError } from '../../errors.js';
import { readCheckpoint } from './checkpoint.js';
import type { JournalFile, JournalFs } from './fs-layer.js';
import { PendingIndex } from './pending-index.js';
import { RecordStream } from './reader.js';
import { findRecordAfter } from './record.js';
import { checkSegmentHeader, parseSegmentName, SEGMENT_HEADER_BYTES } from './segment.js';

export interface ScannedSegment {
  name: string;
  firstSeq: number;
  /** Last valid record's sequence number (`firstSeq - 1` when the segment holds none). */
  lastSeq: number;
  records: number;
  fileBytes: number;
  /** End of the last valid record (or of the header). */
  validBytes: number;
}

/** Bytes at the end of the last segment that hold no whole valid record. */
export interface TornTail {
  segment: string;
  offsetBytes: number;
  cutBytes: number;
  reason: string;
}

/** What is on disk, read without changing anything. */
export interface JournalScan {
  dir: string;
  committedSeq: number;
  segments: ScannedSegment[];
  /** The entries not yet committed, in order. */
  index: PendingIndex;
  /** Highest valid sequence number on disk (0 when there is none). */
  lastSeq: number;
  tornTail: TornTail | null;
}

interface SegmentStop {
  offset: number;
  reason: string;
}

async function readAt(file: JournalFile, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  let got = 0;
  while (got < length) {
    const n = await file.read(buf, got, length - got, position + got);
    if (n === 0) break;
    got += n;
  }
  return buf.subarray(0, got);
}

/** Reads one segment's records, pushing the uncommitted ones to `index`; stops at the first bad byte. */
async function scanSegment(fs: JournalFs, dir: string, name: string, firstSeq: number, index: PendingIndex): Promise<{ seg: ScannedSegment; stop: SegmentStop | null }> {
  const file = await fs.open(join(dir, name), 'r');
  try {
    const fileBytes = await file.sizeBytes();
    const seg: ScannedSegment = { name, firstSeq, lastSeq: firstSeq - 1, records: 0, fileBytes, validBytes: 0 };
    const headerProblem = checkSegmentHeader(await readAt(file, 0, SEGMENT_HEADER_BYTES), firstSeq);
    if (headerProblem) return { seg, stop: { offset: 0, reason: headerProblem } };
    seg.validBytes = SEGMENT_HEADER_BYTES;
    const stream = new RecordStream(file, SEGMENT_HEADER_BYTES, fileBytes);
    for (;;) {
      const r = await stream.next();
      if (r.kind === 'end') return { seg, stop: null };
      if (r.kind === 'short') return { seg, stop: { offset: r.offset, reason: 'incomplete record' } };
      if (r.kind === 'bad') return { seg, stop: { offset: r.offset, reason: r.reason } };
      if (r.seq !== seg.lastSeq + 1) return { seg, stop: { offset: r.offset, reason: `sequence ${r.seq} where ${seg.lastSeq + 1} was expected` } };
      seg.lastSeq = r.seq;
      seg.records++;
      seg.validBytes = r.offset + r.bytes;
      if (r.seq >= index.nextSeq) index.push(r.seq, r.bytes, r.timestampMs, r.offset);
    }
  } finally {
    await file.close();
  }
}

function missing(dir: string, fromSeq: number, toSeq: number, detail: string): AetherError {
  return new AetherError('JOURNAL_SEGMENT_MISSING', `journal ${dir}: uncommitted entries ${fromSeq}..${toSeq} are missing (${detail})`, {
    context: { dir, fromSeq, toSeq },
  });
}

function corrupt(dir: string, message: string, context: Record<string, unknown>): AetherError {
  return new AetherError('JOURNAL_CORRUPT', `journal ${dir}: ${message}`, { context: { dir, ...context } });
}

/**
 * A segment before the last one must hold every entry up to the next segment's first, unless
 * all the missing ones are committed (then nothing is lost: they are released anyway).
 */
function checkInnerSegment(dir: string, seg: ScannedSegment, stop: SegmentStop | null, nextFirstSeq: number, committedSeq: number): void {
  if (seg.lastSeq >= nextFirstSeq) {
    throw corrupt(dir, `segment ${seg.name} runs to sequence ${seg.lastSeq}, past the next segment's first (${nextFirstSeq})`, { segment: seg.name });
  }
  const lastNeeded = nextFirstSeq - 1;
  if (seg.lastSeq === lastNeeded || lastNeeded <= committedSeq) return;
  const fromSeq = Math.max(seg.lastSeq, committedSeq) + 1;
  if (stop) {
    throw corrupt(dir, `segment ${seg.name} is damaged at byte ${stop.offset} (${stop.reason}); uncommitted entries ${fromSeq}..${lastNeeded} cannot be read`, {
      segment: seg.name,
      offset: stop.offset,
    });
  }
  throw missing(dir, fromSeq, lastNeeded, `segment ${seg.name} ends at ${seg.lastSeq} and the next segment starts at ${nextFirstSeq}`);
}

/**
 * Bad bytes in the last segment are a torn write when nothing valid follows them. Valid records
 * behind them mean damage in the middle of the log: refusing to open is better than silently
 * cutting records that may have been acknowledged.
 */
async function checkTail(fs: JournalFs, dir: string, seg: ScannedSegment, stop: SegmentStop): Promise<TornTail> {
  const file = await fs.open(join(dir, seg.name), 'r');
  let rest: Buffer;
  try {
    rest = await readAt(file, stop.offset, seg.fileBytes - stop.offset);
  } finally {
    await file.close();
  }
  const found = findRecordAfter(rest, 1, rest.length, seg.lastSeq);
  if (found !== null) {
    throw corrupt(dir, `segment ${seg.name} is damaged at byte ${stop.offset} (${stop.reason}) and valid records follow at byte ${stop.offset + found}`, {
      segment: seg.name,
      offset: stop.offset,
    });
  }
  return { segment: seg.name, offsetBytes: stop.offset, cutBytes: seg.fileBytes - stop.offset, reason: stop.reason };
}

/** Reads and checks a journal directory without changing it: for recovery and for `aether journal inspect`. */
export async function scanJournal(fs: JournalFs, dir: string): Promise<JournalScan> {
  const committedSeq = await readCheckpoint(fs, dir);
  const names = (await fs.readdir(dir))
    .map((name) => ({ name, firstSeq: parseSegmentName(name) }))
    .filter((s): s is { name: string; firstSeq: number } => s.firstSeq !== null)
    .sort((a, b) => a.firstSeq - b.firstSeq);
  const index = new PendingIndex(committedSeq + 1);
  const segments: ScannedSegment[] = [];
  let tornTail: TornTail | null = null;
  const first = names[0];
  if (first && first.firstSeq > committedSeq + 1) {
    throw missing(dir, committedSeq + 1, first.firstSeq - 1, `the oldest segment starts at ${first.firstSeq} and the checkpoint says ${committedSeq}`);
  }
  for (let i = 0; i < names.length; i++) {
    const { name, firstSeq } = names[i] as { name: string; firstSeq: number };
    const { seg, stop } = await scanSegment(fs, dir, name, firstSeq, index);
    segments.push(seg);
    const next = names[i + 1];
    if (next) checkInnerSegment(dir, seg, stop, next.firstSeq, committedSeq);
    else if (stop) tornTail = await checkTail(fs, dir, seg, stop);
  }
  const lastSeq = segments.reduce((m, s) => Math.max(m, s.lastSeq), 0);
  return { dir, committedSeq, segments, index, lastSeq, tornTail };
}

export interface RecoveryReport {
  committedSeq: number;
  /** Highest valid sequence number found on disk (0 when none). */
  lastSeq: number;
  firstPendingSeq: number | null;
  pendingEntries: number;
  pendingBytes: number;
  /** The torn or corrupt tail that was cut, if any. */
  tornTail: TornTail | null;
  /** Segment files removed: fully committed ones, and a last one left without a valid record. */
  removedSegments: string[];
  /**
   * The checkpoint is ahead of the last record on disk: records the hub had acknowledged were
   * not durable when the machine went down. Nothing is lost (they are committed), and new
   * records are numbered after the checkpoint so the hub never sees a number twice.
   */
  committedBeyondTail: boolean;
}

/**
 * Brings a journal directory to a clean state: cuts a torn tail (durably), removes a last
 * segment without a valid record, releases fully committed segments.
 */
export async function recoverJournal(fs: JournalFs, dir: string): Promise<{ scan: JournalScan; report: RecoveryReport }> {
  const scan = await scanJournal(fs, dir);
  const removed: string[] = [];
  const last = scan.segments[scan.segments.length - 1];
  if (last && last.records === 0) {
    await fs.unlink(join(dir, last.name));
    removed.push(last.name);
    scan.segments.pop();
  } else if (last && scan.tornTail) {
    const file = await fs.open(join(dir, last.name), 'r+');
    try {
      await file.truncate(scan.tornTail.offsetBytes);
      // The cut must be durable before a newer segment exists, or a crash would bring the
      // garbage back in a segment that is no longer the last.
      await file.datasync();
    } finally {
      await file.close();
    }
    last.fileBytes = scan.tornTail.offsetBytes;
  }
  while (scan.segments[0] && (scan.segments[0] as ScannedSegment).lastSeq <= scan.committedSeq) {
    const seg = scan.segments.shift() as ScannedSegment;
    await fs.unlink(join(dir, seg.name));
    removed.push(seg.name);
  }
  if (removed.length > 0) await fs.syncDir(dir);
  // Records that were only in the page cache when the process died are durable from here on:
  // new segments will follow them, and a gap left by a later power loss would be unrecoverable.
  for (const seg of scan.segments) {
    const file = await fs.open(join(dir, seg.name), 'r');
    try {
      await file.datasync();
    } finally {
      await file.close();
    }
  }
  const report: RecoveryReport = {
    committedSeq: scan.committedSeq,
    lastSeq: scan.lastSeq,
    firstPendingSeq: scan.index.oldestSeq,
    pendingEntries: scan.index.count,
    pendingBytes: scan.index.bytes,
    tornTail: scan.tornTail,
    removedSegments: removed,
    committedBeyondTail: scan.lastSeq < scan.committedSeq,
  };
  return { scan, report };
}
