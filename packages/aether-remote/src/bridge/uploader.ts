import { AetherError, isAetherError } from '@aether/core/errors';
import { HASHES_PER_REQUEST_MAX, type AckFrame, type BatchFrame, type MissingFrame, type Resolution, type WelcomeFrame } from '../protocol/frames.js';
import type { WireEntry } from '../protocol/wire-ops.js';
import type { BridgeMetrics } from './metrics.js';

/** A batch of journal ops a mount has committed locally and wants committed at the hub. */
export interface UploadBatch {
  /** The journal sequence this batch covers up to (coalesced-away entries included). */
  upToSeq: number;
  /** The hub sequence the mount's view was at when it made these ops. */
  baseSeq: number;
  /** The first journal sequence it covers (BatchFrame.fromSeq). */
  fromSeq?: number;
  entries: WireEntry[];
  /** Data of the chunks the ops name that the hub may lack; it is asked which first. */
  chunks: ReadonlyMap<string, Buffer>;
}

export interface UploadResult {
  journalSeq: number;
  hubSeq: number | null;
  duplicate: boolean;
  resolutions: Resolution[];
  chunksSent: number;
  chunkBytesSent: number;
}

/** What the uploader needs of a connection. */
export interface UploadLink {
  isOnline(): boolean;
  /** Batches not sent yet wait (`aether sync pause`); one already sent goes again after a reconnect, for its ack. */
  held(): boolean;
  welcome(): WelcomeFrame | undefined;
  /** Highest journal sequence the hub has acknowledged for this mount. */
  appliedSeq(): number;
  /** Sends a request (an `id` is added) and resolves with the reply carrying that id. */
  request(frame: Record<string, unknown>): Promise<unknown>;
  sendChunk(hash: string, data: Buffer): void;
  drain(): Promise<void>;
  /** Drops the connection so that the batch goes again after a backoff delay. */
  retryLater(reason: string): void;
}

/** Refusals that say "not now" rather than "never": the batch is sent again after a reconnect. */
const TRANSIENT = new Set(['INTERNAL', 'BUSY', 'STAGING_FULL', 'TOO_MANY_ERRORS']);

function hubCode(err: unknown): string | undefined {
  return isAetherError(err, 'BRIDGE_REJECTED') ? (err.context.code as string | undefined) : undefined;
}

interface Pending {
  batch: UploadBatch;
  /** Sent at least once: the hub may have committed it. */
  sent?: true;
  resolve: (r: UploadResult) => void;
  reject: (e: Error) => void;
}

/**
 * Uploads batches in order, one at a time: `have` → the missing chunks → `batch` → `ack`. A batch
 * stays at the head of the queue until it is acknowledged, so after a lost connection it is sent
 * again on the next one (the hub acknowledges a re-sent batch without applying it twice). A batch
 * the hub refuses is failed and the next one goes.
 */
export class Uploader {
  private readonly queue: Pending[] = [];
  private running = false;
  private again = false;

  constructor(
    private readonly link: UploadLink,
    private readonly metrics: BridgeMetrics,
    private readonly maxQueued: number,
  ) {}

  get queued(): number {
    return this.queue.length;
  }

  enqueue(batch: UploadBatch): Promise<UploadResult> {
    if (this.queue.length >= this.maxQueued) return Promise.reject(new AetherError('BRIDGE_REJECTED', `${this.queue.length} batches already wait for the hub; wait for acknowledgements first`));
    const last = this.queue[this.queue.length - 1];
    if (last && batch.upToSeq <= last.batch.upToSeq) return Promise.reject(new AetherError('BRIDGE_REJECTED', `batch up to ${batch.upToSeq} is not after the queued batch up to ${last.batch.upToSeq}`));
    return new Promise((resolve, reject) => {
      this.queue.push({ batch, resolve, reject });
      this.kick();
    });
  }

  /** Runs the queue if the link is online (after a handshake, after enqueue). */
  kick(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    void this.run().finally(() => {
      this.running = false;
      if (this.again) this.kick();
    });
  }

  failAll(err: Error): void {
    for (const p of this.queue.splice(0)) p.reject(err);
  }

  private async run(): Promise<void> {
    this.again = false;
    while (this.queue.length > 0 && this.link.isOnline()) {
      const head = this.queue[0]!;
      if (this.link.held() && !head.sent) return;
      head.sent = true;
      try {
        const result = await this.uploadOne(head.batch);
        this.metrics.batchesAcked.inc();
        this.queue.shift();
        head.resolve(result);
      } catch (err) {
        const code = hubCode(err);
        if (code !== undefined && TRANSIENT.has(code)) {
          this.link.retryLater(`the hub answered ${code}`);
          return;
        }
        if (isAetherError(err, 'BRIDGE_REJECTED')) {
          this.queue.shift();
          head.reject(err);
          continue;
        }
        // The connection went: the head is sent again after the next handshake.
        return;
      }
    }
  }

  private async uploadOne(batch: UploadBatch): Promise<UploadResult> {
    // Committed before its ack was lost: sent again without its chunks, for the resolutions the
    // hub gives with the duplicate ack (PROTOCOL.md, idempotent).
    if (batch.upToSeq <= this.link.appliedSeq()) {
      const ack = (await this.link.request(this.frame(batch))) as AckFrame;
      return { journalSeq: ack.journalSeq, hubSeq: ack.hubSeq, duplicate: ack.duplicate, resolutions: ack.resolutions, chunksSent: 0, chunkBytesSent: 0 };
    }
    try {
      return await this.send(batch);
    } catch (err) {
      // A chunk the hub dropped (its staging was full) is sent once more before giving up.
      if (hubCode(err) !== 'MISSING_CHUNKS') throw err;
      return this.send(batch);
    }
  }

  private async send(batch: UploadBatch): Promise<UploadResult> {
    const limits = this.link.welcome()?.limits;
    const hashes = [...batch.chunks.keys()];
    const missing: string[] = [];
    for (let i = 0; i < hashes.length; i += HASHES_PER_REQUEST_MAX) {
      const reply = (await this.link.request({ t: 'have', hashes: hashes.slice(i, i + HASHES_PER_REQUEST_MAX) })) as MissingFrame;
      missing.push(...reply.hashes);
    }
    let bytes = 0;
    for (const h of missing) bytes += batch.chunks.get(h)?.length ?? 0;
    if (limits && bytes > limits.maxStagedBytes) throw new AetherError('BRIDGE_REJECTED', `batch up to ${batch.upToSeq} needs ${bytes} bytes of new chunks; the hub takes at most ${limits.maxStagedBytes} per batch`);
    for (const h of missing) {
      const data = batch.chunks.get(h);
      if (!data) continue;
      this.link.sendChunk(h, data);
      await this.link.drain();
    }
    this.metrics.chunkBytesSent.inc(bytes);
    this.metrics.chunksSkipped.inc(hashes.length - missing.length);
    const ack = (await this.link.request(this.frame(batch))) as AckFrame;
    return { journalSeq: ack.journalSeq, hubSeq: ack.hubSeq, duplicate: ack.duplicate, resolutions: ack.resolutions, chunksSent: missing.length, chunkBytesSent: bytes };
  }

  private frame(batch: UploadBatch): Omit<BatchFrame, 'id'> {
    return { t: 'batch', baseSeq: batch.baseSeq, upToSeq: batch.upToSeq, ...(batch.fromSeq !== undefined ? { fromSeq: batch.fromSeq } : {}), entries: batch.entries };
  }
}
