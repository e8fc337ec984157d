import { Worker } from 'node:worker_threads';
import { AetherError } from '../errors.js';
import type { JournalSpan } from '../runtime/journal/journal.js';
import type { ReclaimResult } from './chunks.js';
import type { BatchResult } from './store.js';


type Reply = { id: number; ok: true; result: BatchResult; appliedSeq: number } | { id: number; ok: true; reclaimed: ReclaimResult } | { id: number; ok: false; error: string };

/** Sends batches to the store's writer thread (`store-worker`), one at a time, in order. */
export class StoreWriterClient {
  private readonly worker: Worker;
  private readonly waiting = new Map<number, { resolve: (r: Reply & { ok: true }) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  private failure: Error | null = null;
  /** Highest journal sequence the writer has committed. */
  appliedSeq: number;

  constructor(dir: string, appliedSeq: number, owner = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 }) {
    this.appliedSeq = appliedSeq;
    this.worker = new Worker(new URL('./store-worker.js', import.meta.url), { workerData: { dir, ...owner } });
    this.worker.on('message', (r: Reply) => {
      const w = this.waiting.get(r.id);
      if (!w) return;
      this.waiting.delete(r.id);
      if (!r.ok) return w.reject(new AetherError('STORE_CORRUPT', `store batch failed: ${r.error}`));
      if ('appliedSeq' in r) this.appliedSeq = Math.max(this.appliedSeq, r.appliedSeq);
      w.resolve(r);
    });
    this.worker.on('error', (err) => this.fail(err));
    this.worker.on('exit', (code) => this.fail(new Error(`the store writer thread exited (${code})`)));
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const w of this.waiting.values()) w.reject(err);
    this.waiting.clear();
  }

  /** Applies the journal entries that `spans` locate; the writer thread reads them itself. */
  async applySpans(spans: JournalSpan[]): Promise<BatchResult> {
    return ((await this.request({ spans })) as { result: BatchResult }).result;
  }

  /** Gives back the space of deleted and overwritten data (Store.reclaimSpace), in turn with batches. */
  async reclaim(copyBudgetBytes: number): Promise<ReclaimResult> {
    return ((await this.request({ reclaim: copyBudgetBytes })) as { reclaimed: ReclaimResult }).reclaimed;
  }

  private request(body: { spans: JournalSpan[] } | { reclaim: number }): Promise<Reply & { ok: true }> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.worker.postMessage({ id, ...body });
    });
  }

  async close(): Promise<void> {
    if (this.failure) return;
    const exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    this.worker.postMessage('close');
    await exited;
  }
}
