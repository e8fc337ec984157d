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

interface Request {
  id: number;
  spans: JournalSpan[];
}

/**
 * Reads the journal entries of `span` straight from the segment file: the main thread only says
 * where they are, so reading, checking and decoding them costs it nothing.
 */
function readSpan(span: JournalSpan): SequencedOp[] {
  const len = span.endOffset - span.offset;
  const buf = Buffer.allocUnsafe(len);
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
  let ops: SequencedOp[];
  try {
    ops = msg.spans.flatMap(readSpan);
  } catch (err) {
    port.postMessage({ id: msg.id, ok: false, error: err instanceof Error ? err.message : String(err) });
    return;
  }
  store.applyBatch(ops).then(
    (result) => port.postMessage({ id: msg.id, ok: true, result, appliedSeq: store.appliedSeq }),
    (err: unknown) => port.postMessage({ id: msg.id, ok: false, error: err instanceof Error ? err.message : String(err) }),
  );
});
