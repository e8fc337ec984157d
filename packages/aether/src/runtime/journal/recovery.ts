import { join } from 'node:path';
import { AetherError } from '../../errors.js';
import { CHECKPOINT_FILE, readCheckpoint } from './checkpoint.js';
import type { JournalFile, JournalFs } from './fs-layer.js';
import { PendingIndex } from './pending-index.js';
import { RecordStream } from './reader.js';
import { maxClaimAfter } from './record.js';
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

/**
 * Where the readable log ends before the files do: bytes at the end of a segment that hold no
 * valid record (a torn write), or entries missing between segments, past what was known to be
 * durable. Recovery cuts there and drops every later segment.
 */
export interface TornTail {
  segment: string;
  offsetBytes: number;
  cutBytes: number;
  reason: string;
  /** Later segments, dropped because they lie past the cut. */
  droppedSegments: string[];
}

/** What is on disk, read without changing anything. */
export interface JournalScan {
  dir: string;
  committedSeq: number;
  /** Highest sequence number the journal had recorded as fsynced (checkpoint and record claims). */
  durableSeq: number;
  segments: ScannedSegment[];
  /** The entries not yet committed, in order. */
  index: PendingIndex;
  /** Highest valid sequence number of the log (0 when there is none). */
  lastSeq: number;
  tornTail: TornTail | null;
}

interface SegmentStop {
  offset: number;
  reason: string;
}

interface SegmentRead {
  seg: ScannedSegment;
  stop: SegmentStop | null;
  /** Highest durability claim of any valid record in the file, behind a stop too. */
  claim: number;
}

/** The first sequence number above the committed ones that no segment can give. */
interface LogBreak {
  seq: number;
  kind: 'missing' | 'damaged';
  /** Index of the segment that holds the break (damaged) or follows the gap (missing). */
  at: number;
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

/**
 * Reads a segment's records up to the first bad byte, pushing each one that continues the
 * pending run to `index`; behind a bad byte it still looks for valid records' durability claims.
 */
async function readSegment(fs: JournalFs, dir: string, name: string, firstSeq: number, index: PendingIndex): Promise<SegmentRead> {
  const file = await fs.open(join(dir, name), 'r');
  try {
    const fileBytes = await file.sizeBytes();
    const seg: ScannedSegment = { name, firstSeq, lastSeq: firstSeq - 1, records: 0, fileBytes, validBytes: 0 };
    let claim = 0;
    let stop: SegmentStop | null = null;
    const headerProblem = checkSegmentHeader(await readAt(file, 0, SEGMENT_HEADER_BYTES), firstSeq);
    if (headerProblem) stop = { offset: 0, reason: headerProblem };
    else {
      seg.validBytes = SEGMENT_HEADER_BYTES;
      const stream = new RecordStream(file, SEGMENT_HEADER_BYTES, fileBytes);
      for (;;) {
        const r = await stream.next();
        if (r.kind === 'end') break;
        if (r.kind !== 'record') stop = { offset: r.offset, reason: r.kind === 'short' ? 'incomplete record' : r.reason };
        else if (r.seq !== seg.lastSeq + 1) stop = { offset: r.offset, reason: `sequence ${r.seq} where ${seg.lastSeq + 1} was expected` };
        if (stop || r.kind !== 'record') break;
        seg.lastSeq = r.seq;
        seg.records++;
        seg.validBytes = r.offset + r.bytes;
        claim = Math.max(claim, r.durableSeq);
        if (r.seq === index.nextSeq) index.push(r.seq, r.bytes, r.timestampMs, r.offset);
      }
    }
    if (stop) claim = Math.max(claim, maxClaimAfter(await readAt(file, stop.offset, fileBytes - stop.offset), 1, fileBytes - stop.offset, seg.lastSeq));
    return { seg, stop, claim };
  } finally {
    await file.close();
  }
}

function corrupt(dir: string, message: string, context: Record<string, unknown>): AetherError {
  return new AetherError('JOURNAL_CORRUPT', `journal ${dir}: ${message}`, { context: { dir, ...context } });
}

/** Walks the segments in order and returns the first needed entry that none of them holds. */
function findBreak(dir: string, reads: SegmentRead[], committedSeq: number): LogBreak | null {
  let expected = committedSeq + 1;
  for (let i = 0; i < reads.length; i++) {
    const { seg, stop } = reads[i] as SegmentRead;
    const prev = reads[i - 1]?.seg;
    if (prev && seg.firstSeq <= prev.lastSeq && prev.lastSeq > committedSeq) {
      throw corrupt(dir, `segments ${prev.name} and ${seg.name} overlap`, { segment: seg.name });
    }
    if (seg.firstSeq > expected) return { seq: expected, kind: 'missing', at: i, reason: `entries ${expected}..${seg.firstSeq - 1} are not in any segment` };
    expected = Math.max(expected, seg.lastSeq + 1);
    const next = reads[i + 1]?.seg;
    // Bad bytes after the last entry a segment had to hold are harmless.
    if (stop && !(next && next.firstSeq <= expected)) return { seq: expected, kind: 'damaged', at: i, reason: `${stop.reason} at byte ${stop.offset} of ${seg.name}` };
  }
  return null;
}

/**
 * A break at or below the durable sequence number hit bytes that had been fsynced: that is
 * corruption or a removed file, and opening would lose acknowledged entries, so it is refused.
 * A break above it is what a crash leaves (a torn write, pages never written back): the log
 * ends there. A missing oldest segment is never a crash artifact (segment names are fsynced
 * before any record goes in), so it is refused too.
 */
function judgeBreak(dir: string, reads: SegmentRead[], brk: LogBreak, durableSeq: number, noCheckpoint: boolean): TornTail {
  const seg = (reads[brk.at] as SegmentRead).seg;
  if (brk.kind === 'missing' && (brk.seq <= durableSeq || brk.at === 0)) {
    const toSeq = seg.firstSeq - 1;
    // With no checkpoint every entry counts as uncommitted: a removed checkpoint looked like removed segments (a review).
    const cause = noCheckpoint ? `the checkpoint file ${join(dir, CHECKPOINT_FILE)} is missing, which said how far entries were committed, or a segment file was removed` : 'a segment file was removed';
    throw new AetherError('JOURNAL_SEGMENT_MISSING', `journal ${dir}: uncommitted entries ${brk.seq}..${toSeq} are missing (${brk.reason}; ${cause})`, {
      context: { dir, fromSeq: brk.seq, toSeq },
    });
  }
  if (brk.kind === 'damaged' && brk.seq <= durableSeq) {
    throw corrupt(dir, `${brk.reason}: entry ${brk.seq} had been made durable (up to ${durableSeq}) and cannot be read`, { segment: seg.name, seq: brk.seq, durableSeq });
  }
  // After a gap the whole next segment goes; after damage, the segment is cut at the bad byte.
  const stop = (reads[brk.at] as SegmentRead).stop;
  const offsetBytes = brk.kind === 'missing' || !stop ? 0 : stop.offset;
  return {
    segment: seg.name,
    offsetBytes,
    cutBytes: seg.fileBytes - offsetBytes,
    reason: brk.kind === 'missing' || !stop ? brk.reason : stop.reason,
    droppedSegments: reads.slice(brk.at + 1).map((r) => r.seg.name),
  };
}

/** Reads and checks a journal directory without changing it: for recovery and for `aether journal inspect`. */
export async function scanJournal(fs: JournalFs, dir: string): Promise<JournalScan> {
  const checkpoint = await readCheckpoint(fs, dir);
  const names = (await fs.readdir(dir))
    .map((name) => ({ name, firstSeq: parseSegmentName(name) }))
    .filter((s): s is { name: string; firstSeq: number } => s.firstSeq !== null)
    .sort((a, b) => a.firstSeq - b.firstSeq);
  const index = new PendingIndex(checkpoint.committedSeq + 1);
  const reads: SegmentRead[] = [];
  for (const { name, firstSeq } of names) reads.push(await readSegment(fs, dir, name, firstSeq, index));
  const durableSeq = reads.reduce((m, r) => Math.max(m, r.claim), checkpoint.durableSeq);
  const brk = findBreak(dir, reads, checkpoint.committedSeq);
  const noCheckpoint = brk?.seq === 1 && names.length > 0 && (await fs.readFile(join(dir, CHECKPOINT_FILE))) === null;
  const tornTail = brk ? judgeBreak(dir, reads, brk, durableSeq, noCheckpoint) : null;
  // Entries past the break never reach the index: nothing there continues the pending run.
  const lastSeq = brk ? brk.seq - 1 : reads.reduce((m, r) => Math.max(m, r.seg.lastSeq), 0);
  return { dir, committedSeq: checkpoint.committedSeq, durableSeq, segments: reads.map((r) => r.seg), index, lastSeq, tornTail };
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
  /** Segment files removed: past a cut, fully committed, or left without a valid record. */
  removedSegments: string[];
  /**
   * The checkpoint is ahead of the last record on disk: records the hub had acknowledged were
   * not durable when the machine went down. Nothing is lost (they are committed), and new
   * records are numbered after the checkpoint so the hub never sees a number twice.
   */
  committedBeyondTail: boolean;
}

/**
 * Brings a journal directory to a clean state: cuts a torn tail and drops what lies past it
 * (durably), removes a last segment without a valid record, releases fully committed segments.
 */
export async function recoverJournal(fs: JournalFs, dir: string): Promise<{ scan: JournalScan; report: RecoveryReport }> {
  const scan = await scanJournal(fs, dir);
  const removed: string[] = [];
  const remove = async (seg: ScannedSegment): Promise<void> => {
    await fs.unlink(join(dir, seg.name));
    removed.push(seg.name);
    scan.segments.splice(scan.segments.indexOf(seg), 1);
  };
  const torn = scan.tornTail;
  if (torn) {
    for (const name of torn.droppedSegments) await remove(scan.segments.find((s) => s.name === name) as ScannedSegment);
    const seg = scan.segments.find((s) => s.name === torn.segment) as ScannedSegment;
    if (torn.offsetBytes <= SEGMENT_HEADER_BYTES || seg.records === 0) await remove(seg);
    else {
      const file = await fs.open(join(dir, seg.name), 'r+');
      try {
        // Made durable with the other segments below. Were the cut lost, the garbage would lie
        // harmlessly between this segment's last entry and the next segment's first.
        await file.truncate(torn.offsetBytes);
      } finally {
        await file.close();
      }
      seg.fileBytes = torn.offsetBytes;
    }
  }
  const last = scan.segments[scan.segments.length - 1];
  if (last && last.records === 0) await remove(last);
  while (scan.segments[0] && (scan.segments[0] as ScannedSegment).lastSeq <= scan.committedSeq) await remove(scan.segments[0] as ScannedSegment);
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
