/**
 * The store's writer, in a worker thread: a batch's SQLite work and its commit fsync run on the
 * second core instead of blocking the event loop that answers FUSE requests.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { decodeOp } from '../tree/ops.js';
import { Store } from './store.js';

interface Request {
  id: number;
  batch: { seq: number; payload: Uint8Array }[];
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
  // Structured clone turns Buffers into plain Uint8Arrays.
  const ops = msg.batch.map(({ seq, payload }) => ({ seq, op: decodeOp(Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength)) }));
  store.applyBatch(ops).then(
    (result) => port.postMessage({ id: msg.id, ok: true, result, appliedSeq: store.appliedSeq }),
    (err: unknown) => port.postMessage({ id: msg.id, ok: false, error: err instanceof Error ? err.message : String(err) }),
  );
});
