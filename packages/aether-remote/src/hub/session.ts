import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import {
  CHUNK_BYTES_MAX,
  CLOSE_AUTH_FAILED,
  CLOSE_PROTOCOL,
  decodeChunkFrame,
  encodeChunkFrame,
  parseClientFrame,
  parseJsonObject,
  PROTOCOL_VERSION,
  PROTOCOL_VERSIONS_SERVED,
  type BatchFrame,
  type ClientFrame,
  type ErrorCode,
  type ErrorFrame,
  type GetFrame,
  type HelloFrame,
  type HubFrame,
} from '../protocol/frames.js';
import { ProtocolViolation } from '../protocol/wire-ops.js';
import { MissingChunksError } from './commit.js';
import { FeedSender } from './feed-sender.js';
import type { Hub } from './hub.js';
import { INO_RANGE } from './schema.js';

/** Flow control: wait for the socket to drain above this many queued bytes, down to the low mark. */
const SEND_HIGH_BYTES = 4 * 1024 * 1024;
const SEND_LOW_BYTES = 1024 * 1024;
/** Messages received and not yet handled before the hub stops reading from the socket. */
const INBOX_MAX = 256;

/**
 * One client connection: hello and authentication, then requests handled strictly in the order
 * they arrive (so a batch always finds the chunks sent before it), the staged chunks of
 * uploads not committed yet, and the changefeed it follows. Every refusal goes through
 * `reject`: an error frame, one log line, one count; only authentication failures and abuse
 * close the connection.
 */
export class Session {
  private phase: 'hello' | 'ready' | 'closed' = 'hello';
  mountId = '';
  mountNo = 0;
  readonly staged = new Map<string, Buffer>();
  private stagedBytes = 0;
  private errors = 0;
  private inbox: Promise<void> = Promise.resolve();
  private inboxCount = 0;
  private readonly drainWaiters: (() => void)[] = [];
  private readonly helloTimer: NodeJS.Timeout;
  private readonly feed: FeedSender;
  /** Feed frames the mount has room for (`follow.window`, `feed-credit`); only the feed waits for it. */
  private feedCredit = Infinity;
  private readonly feedWaiters: (() => void)[] = [];
  /** Pings sent since the mount last answered one or sent anything. */
  unanswered = 0;
  /** Bytes read from the mount at the last ping. */
  private readAtPing = 0;

  constructor(
    private readonly hub: Hub,
    private readonly ws: WebSocket,
    readonly remote: string,
    private readonly socket: Socket,
  ) {
    this.feed = new FeedSender(hub, this, (err) => this.internal('feed', err));
    ws.on('message', (data: Buffer, isBinary: boolean) => this.receive(data, isBinary));
    ws.on('pong', () => (this.unanswered = 0));
    ws.on('close', () => this.closed());
    ws.on('error', (err: Error & { code?: string }) => this.socketError(err));
    this.helloTimer = setTimeout(() => this.reject('AUTH_REQUIRED', `no hello within ${hub.opts.helloTimeoutMs} ms`, { fatal: true }), hub.opts.helloTimeoutMs);
    this.helloTimer.unref();
  }

  get open(): boolean {
    return this.phase !== 'closed' && this.ws.readyState === this.ws.OPEN;
  }

  get ready(): boolean {
    return this.phase === 'ready';
  }

  // ---- sending ----

  private readonly written = (): void => {
    if (this.drainWaiters.length > 0 && (this.ws.bufferedAmount <= SEND_LOW_BYTES || !this.open)) for (const w of this.drainWaiters.splice(0)) w();
  };

  sendText(text: string): void {
    if (!this.open) return;
    this.ws.send(text, this.written);
    this.hub.metrics.bytesOut.inc({ kind: 'control' }, Buffer.byteLength(text));
  }

  send(frame: HubFrame): void {
    this.sendText(JSON.stringify(frame));
  }

  private sendChunk(hash: string, data: Buffer): void {
    if (!this.open) return;
    const frame = encodeChunkFrame(hash, data);
    this.ws.send(frame, { binary: true }, this.written);
    this.hub.metrics.bytesOut.inc({ kind: 'chunk' }, frame.length);
  }

  feedRoom(): Promise<void> {
    if (this.feedCredit > 0 || !this.open) return Promise.resolve();
    return new Promise((resolve) => this.feedWaiters.push(resolve));
  }

  sendFeed(text: string): void {
    this.feedCredit--;
    this.sendText(text);
  }

  private grantFeed(n: number): void {
    this.feedCredit += n;
    for (const w of this.feedWaiters.splice(0)) w();
  }

  /** Resolves once the socket's queue is back under the low mark (or the connection is gone). */
  drain(): Promise<void> {
    if (!this.open || this.ws.bufferedAmount <= SEND_HIGH_BYTES) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  // ---- refusing ----

  reject(code: ErrorCode, message: string, opts: { id?: number; fatal?: boolean; hashes?: string[] } = {}): void {
    if (this.phase === 'closed') return;
    const fatal = opts.fatal ?? false;
    this.hub.metrics.rejected.inc({ reason: code });
    this.hub.log(`rejected ${code} from ${this.remote}${this.mountId ? ` (mount ${this.mountId})` : ''}: ${message}`);
    const frame: ErrorFrame = { t: 'error', code, message, fatal };
    if (opts.id !== undefined) frame.id = opts.id;
    if (opts.hashes) frame.hashes = opts.hashes;
    this.send(frame);
    if (fatal) return this.close(code === 'AUTH_FAILED' ? CLOSE_AUTH_FAILED : CLOSE_PROTOCOL, code);
    if (++this.errors >= this.hub.opts.maxErrorsPerConnection) this.reject('TOO_MANY_ERRORS', `${this.errors} rejected frames on one connection`, { fatal: true });
  }

  private internal(what: string, err: unknown): void {
    this.reject('INTERNAL', `${what} failed: ${err instanceof Error ? err.message : String(err)}`);
  }

  close(code: number, reason: string): void {
    if (this.phase === 'closed') return;
    this.phase = 'closed';
    this.ws.close(code, reason);
    // A peer that never answers the close handshake must not keep the socket.
    setTimeout(() => this.ws.terminate(), 2000).unref();
  }

  private socketError(err: Error & { code?: string }): void {
    // ws has already answered with a close frame (1009 for an oversized message, 1002/1007 for
    // a broken one); what is left is to count and log it.
    const reason: ErrorCode = err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' ? 'FRAME_TOO_LARGE' : 'MALFORMED';
    this.hub.metrics.rejected.inc({ reason });
    this.hub.log(`rejected ${reason} from ${this.remote}${this.mountId ? ` (mount ${this.mountId})` : ''}: ${err.message} (connection closed)`);
  }

  private closed(): void {
    this.phase = 'closed';
    clearTimeout(this.helloTimer);
    this.feed.stop();
    this.staged.clear();
    this.stagedBytes = 0;
    for (const w of this.drainWaiters.splice(0)) w();
    for (const w of this.feedWaiters.splice(0)) w();
    this.hub.detach(this);
  }

  // ---- receiving ----

  private receive(data: Buffer, isBinary: boolean): void {
    this.unanswered = 0;
    this.hub.metrics.bytesIn.inc({ kind: isBinary ? 'chunk' : 'control' }, data.length);
    if (this.phase === 'closed') return;
    if (++this.inboxCount >= INBOX_MAX) this.ws.pause();
    this.inbox = this.inbox
      .then(() => (this.phase === 'closed' ? undefined : isBinary ? this.onChunk(data) : this.onText(data)))
      .catch((err: unknown) => this.internal('request', err))
      .finally(() => {
        if (--this.inboxCount === 0 && this.ws.isPaused) this.ws.resume();
      });
  }

  private async onText(data: Buffer): Promise<void> {
    let frame: ClientFrame | null;
    let id: number | undefined;
    try {
      const raw = parseJsonObject(data.toString('utf8'));
      if (typeof raw.id === 'number') id = raw.id;
      frame = parseClientFrame(raw, this.hub.opts.maxBatchEntries);
      if (frame === null) return this.reject('UNKNOWN_TYPE', `unknown frame type ${JSON.stringify(raw.t).slice(0, 64)}`, { id, fatal: this.phase === 'hello' });
    } catch (err) {
      if (!(err instanceof ProtocolViolation)) throw err;
      return this.reject(err.code, err.message, { id, fatal: this.phase === 'hello' });
    }
    if (this.phase === 'hello') {
      if (frame.t !== 'hello') return this.reject('AUTH_REQUIRED', `${frame.t} before hello`, { fatal: true });
      return this.onHello(frame);
    }
    try {
      return await this.dispatch(frame);
    } catch (err) {
      // The storage failed answering it (a database connection that broke): refused with the
      // request's id, so the client's request fails and is sent again instead of waiting for ever.
      if (id === undefined) throw err;
      return this.reject('INTERNAL', `${frame.t} failed: ${err instanceof Error ? err.message : String(err)}`, { id });
    }
  }

  private async dispatch(frame: ClientFrame): Promise<void> {
    switch (frame.t) {
      case 'hello':
        return this.reject('MALFORMED', 'hello on a connection that already said hello', { fatal: true });
      case 'have':
        return this.send({ t: 'missing', id: frame.id, hashes: await this.hub.storage.missingChunks(frame.hashes.filter((h) => !this.staged.has(h))) });
      case 'batch':
        return this.onBatch(frame);
      case 'follow':
        // Another hub on the same database may have committed what this one has not heard of yet.
        if (frame.cursor > this.hub.hubSeq && frame.cursor > (await this.hub.storage.refreshSeq())) return this.reject('CURSOR_AHEAD', `cursor ${frame.cursor} is ahead of this hub's changefeed (${this.hub.hubSeq}): follow from 0 for a snapshot`);
        this.feedCredit = frame.window ?? Infinity;
        this.grantFeed(0);
        return this.feed.start(frame.cursor);
      case 'get':
        return this.onGet(frame);
      case 'feed-credit':
        return this.grantFeed(frame.n);
    }
  }

  private async onHello(frame: HelloFrame): Promise<void> {
    if (!PROTOCOL_VERSIONS_SERVED.includes(frame.v)) return this.reject('UNSUPPORTED_VERSION', `protocol version ${frame.v}; this hub speaks ${PROTOCOL_VERSIONS_SERVED.join(' and ')}`, { fatal: true });
    if (!this.hub.tokens.matches(frame.token)) return this.reject('AUTH_FAILED', frame.token === '' ? 'no token presented' : 'bad token', { fatal: true });
    clearTimeout(this.helloTimer);
    const mount = await this.hub.register(frame.mountId);
    if (this.phase === 'closed') return;
    this.mountId = frame.mountId;
    this.mountNo = mount.mount_no;
    this.phase = 'ready';
    this.hub.attach(this);
    this.send({
      t: 'welcome',
      v: PROTOCOL_VERSION,
      hubId: this.hub.hubId,
      mountNo: mount.mount_no,
      inoBase: mount.mount_no * INO_RANGE,
      hubSeq: this.hub.hubSeq,
      appliedSeq: mount.applied_seq,
      limits: { maxFrameBytes: this.hub.opts.maxFrameBytes, maxBatchEntries: this.hub.opts.maxBatchEntries, maxStagedBytes: this.hub.opts.maxStagedBytes, chunkBytesMax: CHUNK_BYTES_MAX },
      heartbeatMs: this.hub.opts.heartbeatMs,
    });
  }

  private onChunk(data: Buffer): void {
    if (this.phase !== 'ready') return this.reject('AUTH_REQUIRED', 'binary frame before hello', { fatal: true });
    const chunk = decodeChunkFrame(data);
    if ('error' in chunk) return this.reject('BAD_CHUNK', chunk.error);
    if (this.staged.has(chunk.hash)) return;
    if (this.stagedBytes + chunk.data.length > this.hub.opts.maxStagedBytes) {
      return this.reject('STAGING_FULL', `more than ${this.hub.opts.maxStagedBytes} bytes of chunks uploaded and not committed; send the batch that uses them first`);
    }
    // A copy: `data` is a view into the frame, which would otherwise stay alive whole.
    this.staged.set(chunk.hash, Buffer.from(chunk.data));
    this.stagedBytes += chunk.data.length;
  }

  private async onBatch(batch: BatchFrame): Promise<void> {
    const base = this.mountNo * INO_RANGE;
    for (const e of batch.entries) {
      if (e.op.t === 'mknode' && (e.op.ino <= base || e.op.ino >= base + INO_RANGE)) {
        this.unstage(batch);
        return this.reject('BAD_OP', `batch ${batch.id} entry ${e.seq}: inode ${e.op.ino} is outside this mount's range (${base}, ${base + INO_RANGE})`, { id: batch.id });
      }
    }
    let outcome;
    try {
      outcome = await this.hub.commit(this, batch);
    } catch (err) {
      if (err instanceof MissingChunksError) {
        this.unstage(batch);
        return this.reject('MISSING_CHUNKS', `batch ${batch.id}: ${err.message}`, { id: batch.id, hashes: err.hashes.slice(0, 8192) });
      }
      // Kept staged: the client sends this batch again after an internal failure.
      return this.reject('INTERNAL', `batch ${batch.id} failed: ${err instanceof Error ? err.message : String(err)}`, { id: batch.id });
    }
    this.unstage(batch);
    if (outcome.duplicate) this.send({ t: 'ack', id: batch.id, journalSeq: outcome.journalSeq, hubSeq: null, duplicate: true, resolutions: outcome.resolutions });
    else this.send({ t: 'ack', id: batch.id, journalSeq: outcome.journalSeq, hubSeq: outcome.hubSeq, duplicate: false, resolutions: outcome.resolutions });
  }

  /** Forgets the staged chunks a batch named, once it is committed or refused for good. */
  private unstage(batch: BatchFrame): void {
    for (const e of batch.entries) {
      if (e.op.t !== 'content') continue;
      for (const [, hash] of e.op.blocks) {
        const data = this.staged.get(hash);
        if (!data) continue;
        this.staged.delete(hash);
        this.stagedBytes -= data.length;
      }
    }
  }

  private async onGet(frame: GetFrame): Promise<void> {
    const missing: string[] = [];
    for (const hash of frame.hashes) {
      const data = await this.hub.storage.readChunk(hash);
      if (data) this.sendChunk(hash, data);
      else missing.push(hash);
      await this.drain();
      if (!this.open) return;
    }
    this.send({ t: 'got', id: frame.id, missing });
  }

  /**
   * True when the mount was heard since the last ping: it answered or sent a whole message, or
   * bytes of one still arriving came in (a frame larger than a slow link carries in three beats),
   * or this hub stopped reading it (a full inbox: the silence is its own).
   */
  heardSincePing(): boolean {
    return this.unanswered === 0 || this.socket.bytesRead > this.readAtPing || this.ws.isPaused;
  }

  /**
   * Pings with what the hub has read of the connection so far (`heard <bytes>`): a mount whose
   * own pongs do not move it learns that what it sends does not reach the hub (PROTOCOL.md).
   */
  ping(): void {
    this.readAtPing = this.socket.bytesRead;
    if (this.open) this.ws.ping(`heard ${this.readAtPing}`);
  }

  /** Starts sending new changefeed entries, if this connection follows the feed. */
  wakeFeed(): void {
    this.feed.wake();
  }
}
