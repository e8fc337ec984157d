/**
 * The store's writer, in a worker thread: a batch's SQLite work and its commit fsync run on the
 * second core instead of blocking the event loop that answers FUSE requests.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { decodeRecord } from '../runtime/journal/record.js';
import type { JournalSpan } from '../runtime/journal/journal.js';
import { decodeOp, OP_RECORD_TYPE } from '../tree/ops.js';
import { Store, type SequencedOp } from './store.js';

type Request = { id: number; spans: JournalSpan[] } | { id: number; reclaim: number };

/**
 * Read buffers kept between batches. A fresh buffer costs a page fault per 4 KiB on first touch,
 * which on this kind of VM made reading the journal the worker's largest cost; a batch's ops point
 * into its buffers only until the batch is applied, so they are reused after that.
 */
const spare: Buffer[] = [];
const SPARE_MAX = 4;
const SPARE_BYTES_MAX = 64 * 1024 * 1024;

function takeBuffer(len: number): Buffer {
  const i = spare.findIndex((b) => b.length >= len);
  if (i >= 0) return spare.splice(i, 1)[0]!.subarray(0, len);
  // Rounded up so that later, slightly larger spans fit too.
  return Buffer.allocUnsafeSlow(Math.max(len, Math.min(SPARE_BYTES_MAX, 2 ** Math.ceil(Math.log2(Math.max(len, 1 << 20)))))).subarray(0, len);
}

function giveBack(bufs: readonly Buffer[]): void {
  for (const b of bufs) {
    const whole = Buffer.from(b.buffer, b.byteOffset, b.buffer.byteLength - b.byteOffset);
    if (whole.length > SPARE_BYTES_MAX) continue;
    spare.push(whole);
  }
  spare.sort((a, b) => a.length - b.length);
  spare.splice(0, Math.max(0, spare.length - SPARE_MAX));
}

/**
 * Reads the journal entries of `span` straight from the segment file into `buf` (`len` bytes):
 * the main thread only says where they are, so reading, checking and decoding them costs it
 * nothing. The ops point into `buf`.
 */
function readSpan(span: JournalSpan, buf: Buffer): SequencedOp[] {
  const len = buf.length;
  const fd = openSync(span.path, 'r');
  try {
    let got = 0;
    while (got < len) {
      const n = readSync(fd, buf, got, len - got, span.offset + got);
      if (n === 0) throw new Error(`${span.path}: ends before byte ${span.offset + got}`);
      got += n;
    }
  } finally {
    closeSync(fd);
  }
  const ops: SequencedOp[] = [];
  let at = 0;
  for (let seq = span.firstSeq; seq <= span.lastSeq; seq++) {
    const r = decodeRecord(buf, at, len);
    if (r.kind !== 'record' || r.seq !== seq) throw new Error(`${span.path}: entry ${seq} at byte ${span.offset + at} is ${r.kind === 'record' ? `sequence ${r.seq}` : r.kind}`);
    if (r.type === OP_RECORD_TYPE) ops.push({ seq, op: decodeOp(r.payload) });
    at += r.bytes;
  }
  return ops;
}

const port = parentPort;
if (!port) throw new Error('store-worker must run in a worker thread');
const { dir, uid, gid } = workerData as { dir: string; uid: number; gid: number };
const store = Store.open(dir, { uid, gid });

port.on('message', (msg: Request | 'close') => {
  if (msg === 'close') {
    store.close();
    port.close();
    return;
  }
  if ('reclaim' in msg) {
    store.reclaimSpace(msg.reclaim).then(
      (reclaimed) => port.postMessage({ id: msg.id, ok: true, reclaimed }),
      (err: unknown) => port.postMessage({ id: msg.id, ok: false, error: err instanceof Error ? err.message : String(err) }),
    );
    return;
  }
  const bufs = msg.spans.map((span) => takeBuffer(span.endOffset - span.offset));
  let ops: SequencedOp[];
  try {
    ops = msg.spans.flatMap((span, i) => readSpan(span, bufs[i]!));
  } catch (err) {
    giveBack(bufs);
    port.postMessage({ id: msg.id, ok: false, error: err instanceof Error ? err.message : String(err) });
    return;
  }
  store.applyBatch(ops).then(
    (result) => port.postMessage({ id: msg.id, ok: true, result, appliedSeq: store.appliedSeq }),
    (err: unknown) => port.postMessage({ id: msg.id, ok: false, error: err instanceof Error ? err.message : String(err) }),
  ).finally(() => giveBack(bufs));
});
