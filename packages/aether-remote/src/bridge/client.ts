import { EventEmitter } from 'node:events';
import { WebSocket, type RawData } from 'ws';
import { AetherError } from '@aether/core/errors';
import { createRegistry, type Registry } from '@aether/core/metrics/registry';
import { systemClock, type Clock, type TimerHandle } from '@aether/core/runtime/infra/clock';
import {
  CLOSE_AUTH_FAILED,
  decodeChunkFrame,
  encodeChunkFrame,
  HASHES_PER_REQUEST_MAX,
  PROTOCOL_VERSION,
  type ErrorFrame,
  type FeedEntry,
  type GotFrame,
  type HubFrame,
  type SnapshotPartFrame,
  type WelcomeFrame,
} from '../protocol/frames.js';
import type { BackoffStep, ReconnectBackoff } from './backoff.js';
import { FeedQueue } from './feed-queue.js';
import { BridgeMetrics } from './metrics.js';
import { Uploader, type UploadBatch, type UploadLink, type UploadResult } from './uploader.js';

export type { UploadBatch, UploadResult } from './uploader.js';

export type BridgeState = 'idle' | 'connecting' | 'online' | 'backing-off' | 'refused' | 'stopped';

/**
 * What the changefeed delivers, in order. `reset` means: drop the committed view, what follows
 * rebuilds it (the hub is another one, or this mount's cursor is ahead of it). A snapshot comes as
 * begin, parts, end; the view is the snapshot's only after `snapshot-end`.
 */
export type FeedEvent =
  | { kind: 'entry'; entry: FeedEntry }
  | { kind: 'snapshot-begin'; hubSeq: number }
  | { kind: 'snapshot-part'; part: SnapshotPartFrame }
  | { kind: 'snapshot-end'; hubSeq: number }
  | { kind: 'reset' };

export interface BridgeClientOptions {
  /**
   * `ws://HOST:PORT` or `wss://HOST:PORT`, or several hubs of one store (PostgreSQL) to fail over
   * between: every failed connect and every lost connection moves to the next URL (wrapping), the
   * delay before it paced by the backoff as with one URL.
   */
  url: string | readonly string[];
  token: string;
  /** This mount's persistent id (a lowercase UUID). */
  mountId: string;
  backoff: ReconnectBackoff;
  /** Follow the changefeed from this cursor (the last hub sequence applied; 0 for none). Omit to not follow. */
  followFrom?: number;
  /** The hub `followFrom` came from (its welcome's hubId): with another hub, the feed starts over with `reset`. */
  followHubId?: string;
  /** Certificates to trust for wss:// (a self-signed hub's own certificate). */
  ca?: string | Buffer;
  registry?: Registry;
  clock?: Clock;
  log?: (line: string) => void;
  /** Opening the socket and the hello/welcome exchange must finish within this. */
  connectTimeoutMs?: number;
  /** Largest message accepted from the hub (a feed entry holds a whole batch). */
  maxPayloadBytes?: number;
  /** The feed's window: frames from the hub the queue may hold; the hub sends more as the consumer takes them. */
  feedBufferMax?: number;
  /** Batches waiting for the hub before `upload` refuses more. */
  maxQueuedBatches?: number;
  /**
   * Mask frames with an all-zero key, which ws then skips: about twice the upload rate on
   * loopback. RFC 6455 wants an unpredictable key so that script in a browser cannot steer the
   * bytes a proxy sees; that threat does not exist for this client over wss://, where no proxy
   * sees them. Off by default.
   */
  zeroMaskKey?: boolean;
}

interface Request {
  resolve: (frame: unknown) => void;
  reject: (err: Error) => void;
}

interface ChunkWanted {
  id: number;
  hashes: string[];
  got: Map<string, Buffer>;
  resolve: (r: Map<string, Buffer>) => void;
  reject: (err: Error) => void;
}

const SEND_HIGH_BYTES = 4 * 1024 * 1024;

/**
 * The mount side of the hub protocol (hub/PROTOCOL.md): one connection at a time, hello with the
 * token and mount id, ordered batch uploads that survive reconnects, the changefeed as an async
 * iterator, chunk downloads, and reconnects paced by the backoff policy (reset after every
 * completed handshake). No FUSE here: the mount drives it.
 *
 * Events: `state` (BridgeState), `attempt` ({ attempt }), `backoff` (BackoffStep),
 * `welcome` (WelcomeFrame), `disconnect` ({ code, reason }), `hub-error` (ErrorFrame).
 */
export class BridgeClient extends EventEmitter {
  private stateValue: BridgeState = 'idle';
  private readonly urls: readonly string[];
  private urlIndex = 0;
  private ws: WebSocket | undefined;
  private welcomeFrame: WelcomeFrame | undefined;
  /** Why the hub is not reachable (the last failed connect, refusal or lost connection), until the next welcome. */
  private lostBecause: string | null = null;
  /**
   * When the connection was last lost (or the client started), until the next welcome. For a
   * connection given up for silence, when the hub was last heard.
   */
  offlineSinceMs: number | null = Date.now();
  /** When the hub last sent anything (a frame or a ping); null until it first did. */
  lastHeardMs: number | null = null;
  private welcomed = false;
  /** Why the last connection was lost (the first failure, where lostBecause is the latest). */
  private offlineBecause: string | null = null;
  /** Feed frames the queue may hold: the window the hub is given. */
  private readonly feedWindow: number;
  /** Frames taken from the queue since the last grant. */
  private ungranted = 0;
  private queuedEntries = 0;
  private lastHubId: string | undefined;
  /** Why this client no longer syncs with the hub (another tree, or one behind what it has seen), for good. */
  private refusedBecause: string | null = null;
  private uploadsHeld = false;
  private applied = 0;
  private cursor: number | undefined;
  private knownHubSeq = 0;
  private snapshotSeq: number | undefined;
  /** Connections given up by `resync`: frames still arriving on them are dropped. */
  private readonly abandoned = new WeakSet<WebSocket>();
  private nextId = 1;
  private readonly requests = new Map<number, Request>();
  private readonly wanted = new Map<number, ChunkWanted>();
  private retryTimer: TimerHandle | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  /**
   * What the hub said it had read of this connection at its last ping (`heard <bytes>`), and
   * since when that has not moved although this client answered every ping meanwhile.
   */
  private hubReadBytes: number | undefined;
  private unreadSinceMs: number | null = null;
  private lastPingMs = 0;
  private readonly drainWaiters: (() => void)[] = [];
  private readonly feedQueue: FeedQueue<FeedEvent>;
  private readonly uploader: Uploader;
  private readonly clock: Clock;
  private readonly log: (line: string) => void;
  readonly registry: Registry;
  readonly metrics: BridgeMetrics;

  constructor(private readonly opts: BridgeClientOptions) {
    super();
    this.clock = opts.clock ?? systemClock;
    this.log = opts.log ?? (() => undefined);
    this.urls = typeof opts.url === 'string' ? [opts.url] : [...opts.url];
    if (this.urls.length === 0) throw new AetherError('BRIDGE_PROTOCOL', 'the bridge client needs at least one hub URL');
    this.cursor = opts.followFrom;
    this.lastHubId = opts.followHubId;
    this.registry = opts.registry ?? createRegistry();
    this.metrics = new BridgeMetrics(this.registry, {
      // Not yet received, and received but not yet taken by the consumer (a queue of thousands).
      feedLag: () => (this.cursor === undefined ? 0 : Math.max(0, this.knownHubSeq - this.cursor) + this.queuedEntries),
      lastHeardMs: () => this.lastHeardMs,
    });
    this.feedQueue = new FeedQueue<FeedEvent>();
    this.feedWindow = opts.feedBufferMax ?? 4096;
    this.uploader = new Uploader(this.uploadLink(), this.metrics, opts.maxQueuedBatches ?? 1024);
  }

  get mountId(): string {
    return this.opts.mountId;
  }

  get state(): BridgeState {
    return this.stateValue;
  }

  /** The hub URL connected to, or tried next. */
  get url(): string {
    return this.urls[this.urlIndex]!;
  }

  /** The last handshake's welcome: mount number, inode base, hub sequence, limits. */
  get welcome(): WelcomeFrame | undefined {
    return this.welcomeFrame;
  }

  /** Highest journal sequence of this mount the hub has acknowledged. */
  get appliedSeq(): number {
    return this.applied;
  }

  /** The last hub sequence received on the changefeed (what to follow from after a restart, once applied). */
  get feedCursor(): number | undefined {
    return this.cursor;
  }

  get pendingUploads(): number {
    return this.uploader.queued;
  }

  private setState(s: BridgeState): void {
    if (this.stateValue === s) return;
    this.stateValue = s;
    this.emit('state', s);
  }

  /** Connects, and keeps reconnecting until `close()`. */
  start(): void {
    if (this.stateValue !== 'idle') return;
    this.connect();
  }

  /**
   * Holds queued batches back (`aether sync pause`): none not sent yet is sent until released, also
   * after a reconnect. One already sent is sent again after a reconnect, for its acknowledgement.
   */
  holdUploads(held: boolean): void {
    this.uploadsHeld = held;
    if (!held) this.uploader.kick();
  }

  /** Commits a batch at the hub; resolves with the acknowledgement. Batches go in the order given. */
  upload(batch: UploadBatch): Promise<UploadResult> {
    if (this.stateValue === 'stopped') return Promise.reject(new AetherError('BRIDGE_CLOSED', 'the bridge client is closed'));
    return this.uploader.enqueue(batch);
  }

  /** Changefeed entries received and not yet taken by the consumer. */
  get feedQueued(): number {
    return this.queuedEntries;
  }

  /** The changefeed, from `followFrom`; one consumer. Ends when the client closes. */
  feed(): AsyncIterableIterator<FeedEvent> {
    const it = this.feedQueue[Symbol.asyncIterator]();
    return {
      next: async () => {
        const r = await it.next();
        if (!r.done && r.value.kind !== 'reset') this.taken();
        if (!r.done && r.value.kind === 'entry') this.queuedEntries--;
        return r;
      },
      return: () => it.return!(),
      [Symbol.asyncIterator]() {
        return this;
      },
    };
  }

  /** Downloads committed chunks by hash; hashes the hub does not have are absent from the result. */
  fetchChunks(hashes: readonly string[]): Promise<Map<string, Buffer>> {
    if (this.stateValue === 'stopped') return Promise.reject(new AetherError('BRIDGE_CLOSED', 'the bridge client is closed'));
    const parts: Promise<Map<string, Buffer>>[] = [];
    for (let i = 0; i < hashes.length; i += HASHES_PER_REQUEST_MAX) {
      const part = hashes.slice(i, i + HASHES_PER_REQUEST_MAX);
      parts.push(
        new Promise((resolve, reject) => {
          const w: ChunkWanted = { id: this.nextId++, hashes: part, got: new Map(), resolve, reject };
          this.wanted.set(w.id, w);
          if (this.stateValue === 'online') this.sendGet(w);
        }),
      );
    }
    return Promise.all(parts).then((maps) => new Map(maps.flatMap((m) => [...m])));
  }

  // ---- the connection ----

  private connect(): void {
    this.setState('connecting');
    this.metrics.connectAttempts.inc();
    const url = this.url;
    this.emit('attempt', { attempt: this.opts.backoff.attempts, url });
    const timeoutMs = this.opts.connectTimeoutMs ?? 10_000;
    const ws = new WebSocket(url, {
      handshakeTimeout: timeoutMs,
      maxPayload: this.opts.maxPayloadBytes ?? 256 * 1024 * 1024,
      perMessageDeflate: false,
      ...(this.opts.zeroMaskKey ? { generateMask: (mask: Buffer) => void mask.fill(0) } : {}),
      ...(this.opts.ca !== undefined ? { ca: this.opts.ca } : {}),
    });
    this.ws = ws;
    let gaveUp = false;
    const welcomeTimer = setTimeout(() => {
      this.lostBecause = `no welcome from ${url} within ${timeoutMs} ms`;
      this.log(this.lostBecause);
      // Its error ("closed before the connection was established") would hide why.
      gaveUp = true;
      ws.terminate();
    }, timeoutMs);
    ws.on('open', () => this.sendJson({ t: 'hello', v: PROTOCOL_VERSION, token: this.opts.token, mountId: this.opts.mountId }));
    ws.on('message', (data: RawData, isBinary: boolean) => {
      if (this.abandoned.has(ws)) return;
      this.touch();
      if (isBinary) return this.onChunk(data as Buffer);
      let frame: HubFrame;
      try {
        frame = JSON.parse((data as Buffer).toString('utf8')) as HubFrame;
      } catch {
        this.log('the hub sent a frame that is not JSON; reconnecting');
        return ws.terminate();
      }
      if (frame.t === 'welcome') clearTimeout(welcomeTimer);
      this.onFrame(frame);
    });
    ws.on('ping', (data: Buffer) => {
      this.touch();
      this.hubRead(data);
    });
    ws.on('error', (err) => {
      if (gaveUp) return;
      this.lostBecause = `connection to ${url}: ${err.message}`;
      this.log(this.lostBecause);
    });
    ws.on('close', (code, reason) => {
      clearTimeout(welcomeTimer);
      this.disconnected(ws, code, reason.toString());
    });
  }

  /** The hub pings every heartbeat; silence for three of them means the connection is dead. */
  private touch(): void {
    this.lastHeardMs = Date.now();
    const beatMs = this.welcomeFrame?.heartbeatMs;
    if (beatMs === undefined) return;
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.silent(beatMs), 3 * beatMs);
    this.idleTimer.unref();
  }

  /**
   * A hub's ping says how many bytes of this connection it has read. Each answer to the previous
   * ping adds to them, so a count that stays put means nothing this client sends reaches the hub
   * (the way to it cut while its pings still arrive), or the hub stopped reading. The hub drops a
   * connection it hears nothing on, and not one it stopped reading itself: the client only names it.
   */
  private hubRead(ping: Buffer): void {
    const m = /^heard (\d+)$/.exec(ping.toString('latin1'));
    if (!m) return;
    const read = Number(m[1]);
    if (read !== this.hubReadBytes) this.unreadSinceMs = null;
    else this.unreadSinceMs ??= this.lastPingMs;
    this.hubReadBytes = read;
    this.lastPingMs = Date.now();
  }

  private silent(beatMs: number): void {
    // Timers run before the loop reads its sockets: after a stall of this process (stopped, or
    // a long synchronous call) the hub's pings may be waiting unread. Decide after the read.
    setImmediate(() => {
      if (this.lastHeardMs !== null && Date.now() - this.lastHeardMs < 3 * beatMs) return;
      this.lostBecause = `nothing from the hub for ${3 * beatMs} ms`;
      // Offline since the hub was last heard, not since the silence was noticed.
      this.offlineSinceMs = this.lastHeardMs;
      this.log(`${this.lostBecause}; reconnecting`);
      this.ws?.terminate();
    });
  }

  /**
   * Why the hub is not reachable, or, while connected, a silence longer than one and a half
   * heartbeats (a hub stopped or cut off without closing: the connection is given up only after
   * three, and writers may already wait for it meanwhile).
   */
  get problem(): string | null {
    if (this.refusedBecause !== null) return this.refusedBecause;
    const beatMs = this.welcomeFrame?.heartbeatMs;
    if (this.stateValue === 'online' && beatMs !== undefined && this.lastHeardMs !== null) {
      const silentMs = Date.now() - this.lastHeardMs;
      if (silentMs > 1.5 * beatMs) {
        return `nothing from the hub for ${(silentMs / 1000).toFixed(1)} s (it pings every ${beatMs} ms; reconnecting after ${3 * beatMs} ms of silence)`;
      }
      const unreadMs = this.unreadSinceMs === null ? 0 : Date.now() - this.unreadSinceMs;
      if (unreadMs > 1.5 * beatMs) {
        return `the hub has read nothing from this mount for ${(unreadMs / 1000).toFixed(1)} s: what it sends does not reach the hub, or the hub stopped reading (it drops a mount it hears nothing from for ${3 * beatMs} ms)`;
      }
    }
    return this.lostBecause;
  }

  private disconnected(ws: WebSocket, code: number, reason: string): void {
    if (ws !== this.ws) return;
    this.ws = undefined;
    clearTimeout(this.idleTimer);
    this.hubReadBytes = undefined;
    this.unreadSinceMs = null;
    this.metrics.connected.set(0);
    this.welcomeFrame = undefined;
    for (const w of this.drainWaiters.splice(0)) w();
    const lost = new AetherError('BRIDGE_CLOSED', `connection lost (${code}${reason ? ` ${reason}` : ''})`);
    for (const r of this.requests.values()) r.reject(lost);
    this.requests.clear();
    // A snapshot cut short leaves the consumer with half a view: it must start over.
    if (this.snapshotSeq !== undefined) {
      this.snapshotSeq = undefined;
      this.resetFeed();
    }
    this.emit('disconnect', { code, reason });
    this.offlineSinceMs ??= Date.now();
    this.offlineBecause ??= this.lostBecause ?? `connection closed (${code}${reason ? ` ${reason}` : ''})`;
    if (code === CLOSE_AUTH_FAILED) {
      this.lostBecause = 'the hub refused the token (AUTH_FAILED)';
      this.log('the hub refused the token; retrying with backoff');
    }
    this.lostBecause ??= `connection closed (${code}${reason ? ` ${reason}` : ''})`;
    if (this.stateValue === 'stopped' || this.stateValue === 'refused') return;
    // Failover: the next attempt goes to the next hub; the backoff paces attempts across all of them.
    if (this.urls.length > 1) this.urlIndex = (this.urlIndex + 1) % this.urls.length;
    const step: BackoffStep = this.opts.backoff.next();
    this.metrics.reconnectAttempts.inc();
    this.metrics.reconnectDelayMs.observe(step.delayMs);
    this.setState('backing-off');
    this.emit('backoff', step);
    this.retryTimer = this.clock.setTimeout(() => {
      this.retryTimer = undefined;
      if (this.stateValue === 'backing-off') this.connect();
    }, step.delayMs);
  }

  private onWelcome(w: WelcomeFrame): void {
    // A hub of another tree (a hub started on an empty or other data directory) would replace
    // everything this mount has seen with its tree, and refuse every change made here (a review:
    // every mount's files gone, then BAD_OP for ever). A mount that has followed nothing yet may
    // start over with it.
    if (this.lastHubId !== undefined && this.lastHubId !== w.hubId && (this.cursor ?? 0) > 0) {
      return this.refuse(`the hub at ${this.url} keeps another tree (hub id ${w.hubId}; this mount follows ${this.lastHubId}): not syncing with it, so nothing here is removed; point the mount at its own hub, or copy out what you need and mount with a new state directory to follow this one`);
    }
    this.opts.backoff.reset();
    if (!this.welcomed) this.log(`connected to ${this.url}`);
    else {
      const offlineS = ((Date.now() - (this.offlineSinceMs ?? Date.now())) / 1000).toFixed(1);
      const last = this.lostBecause !== null && this.lostBecause !== this.offlineBecause ? `; last failed attempt: ${this.lostBecause}` : '';
      this.log(`connected to ${this.url} again, offline for ${offlineS} s${this.offlineBecause ? ` (${this.offlineBecause}${last})` : ''}`);
    }
    this.offlineBecause = null;
    this.welcomed = true;
    this.lostBecause = null;
    this.offlineSinceMs = null;
    this.welcomeFrame = w;
    this.applied = Math.max(this.applied, w.appliedSeq);
    this.knownHubSeq = w.hubSeq;
    this.metrics.connected.set(1);
    this.touch();
    if (this.cursor !== undefined) {
      // A cursor belongs to one hub's changefeed: with another hub, start from nothing.
      if (this.lastHubId !== undefined && this.lastHubId !== w.hubId) this.resetFeed();
      this.follow(this.cursor);
    }
    this.lastHubId = w.hubId;
    this.setState('online');
    this.emit('welcome', w);
    for (const want of this.wanted.values()) this.sendGet(want);
    this.uploader.kick();
  }

  /**
   * Starts the changefeed over from a snapshot: the hub no longer has chunks a queued entry or
   * snapshot names (it reclaimed them after the grace period). What is queued goes, the connection
   * is replaced (its frames are ignored from now on), and the next one follows from 0.
   */
  resync(): void {
    this.feedQueue.clear();
    this.queuedEntries = 0;
    this.resetFeed();
    if (this.ws) {
      this.abandoned.add(this.ws);
      this.ws.terminate();
    }
  }

  /** Stops syncing with the hub for good: the mount goes on offline, and says why (`problem`). */
  private refuse(why: string): void {
    this.refusedBecause = why;
    this.log(why);
    this.setState('refused');
    this.metrics.connected.set(0);
    this.ws?.terminate();
  }

  private resetFeed(): void {
    this.cursor = 0;
    this.feedQueue.push({ kind: 'reset' });
  }

  private onFrame(frame: HubFrame): void {
    switch (frame.t) {
      case 'welcome':
        return this.onWelcome(frame);
      case 'missing':
        return this.settle(frame.id, frame);
      case 'ack':
        this.applied = Math.max(this.applied, frame.journalSeq);
        if (frame.hubSeq !== null) this.knownHubSeq = Math.max(this.knownHubSeq, frame.hubSeq);
        return this.settle(frame.id, frame);
      case 'got':
        return this.onGot(frame);
      case 'entry':
        this.metrics.feedEntries.inc();
        this.cursor = frame.entry.hubSeq;
        this.knownHubSeq = Math.max(this.knownHubSeq, frame.entry.hubSeq);
        this.queuedEntries++;
        return this.feedQueue.push({ kind: 'entry', entry: frame.entry });
      case 'snapshot-begin':
        this.snapshotSeq = frame.hubSeq;
        return this.feedQueue.push({ kind: 'snapshot-begin', hubSeq: frame.hubSeq });
      case 'snapshot-part':
        return this.feedQueue.push({ kind: 'snapshot-part', part: frame });
      case 'snapshot-end':
        this.metrics.snapshots.inc();
        this.cursor = frame.hubSeq;
        this.snapshotSeq = undefined;
        return this.feedQueue.push({ kind: 'snapshot-end', hubSeq: frame.hubSeq });
      case 'error':
        return this.onHubError(frame);
    }
  }

  private onHubError(e: ErrorFrame): void {
    this.log(`hub error ${e.code}: ${e.message}`);
    if (!this.welcomeFrame) this.lostBecause = `hub error ${e.code}: ${e.message}`;
    this.emit('hub-error', e);
    if (e.code === 'CURSOR_AHEAD' && this.cursor !== undefined) {
      // A hub restored from a backup: following it from 0 replaced every mount's tree with the
      // older one, and what was committed since, which only the mounts still held, was gone (a review).
      return this.refuse(`the hub at ${this.url} is behind this mount (${e.message}): restored from a backup? Not following it, so nothing here is removed; copy out what it lacks, then mount with a new state directory to follow it`);
    }
    if (e.id === undefined) {
      // A failure inside the hub that names no request may have been one of ours: reconnecting
      // fails every request in flight, and the uploader sends its batch again.
      if (e.code === 'INTERNAL') this.ws?.terminate();
      return;
    }
    const err = new AetherError('BRIDGE_REJECTED', `the hub refused request ${e.id}: ${e.code}: ${e.message}`, { context: { code: e.code, ...(e.hashes ? { hashes: e.hashes } : {}) } });
    const r = this.requests.get(e.id);
    if (r) {
      this.requests.delete(e.id);
      return r.reject(err);
    }
    const w = this.wanted.get(e.id);
    if (w) {
      this.wanted.delete(e.id);
      w.reject(err);
    }
  }

  private settle(id: number, frame: unknown): void {
    const r = this.requests.get(id);
    if (!r) return;
    this.requests.delete(id);
    r.resolve(frame);
  }

  private onChunk(frame: Buffer): void {
    const chunk = decodeChunkFrame(frame);
    if ('error' in chunk) return this.log(`the hub sent a bad chunk: ${chunk.error}`);
    for (const w of this.wanted.values()) if (w.hashes.includes(chunk.hash)) w.got.set(chunk.hash, Buffer.from(chunk.data));
  }

  private onGot(frame: GotFrame): void {
    const w = this.wanted.get(frame.id);
    if (!w) return;
    this.wanted.delete(frame.id);
    w.resolve(w.got);
  }

  private sendGet(w: ChunkWanted): void {
    this.sendJson({ t: 'get', id: w.id, hashes: w.hashes });
  }

  // ---- sending ----

  private readonly written = (): void => {
    const ws = this.ws;
    if (this.drainWaiters.length > 0 && (!ws || ws.bufferedAmount <= SEND_HIGH_BYTES / 4)) for (const w of this.drainWaiters.splice(0)) w();
  };

  /**
   * Follows the feed with a window of what the queue has room for: the hub sends no more until
   * granted (`taken`). Not by pausing the socket: the entry being applied may wait for chunks,
   * and pings must be answered, and both come on it (a paused socket left the two waiting on
   * each other until the silence timeout, a review).
   */
  private follow(cursor: number): void {
    this.ungranted = 0;
    // The hub's frames still queued count against the window; the client's own resets do not (taking one grants nothing).
    const queued = this.feedQueue.count((e) => e.kind !== 'reset');
    this.sendJson({ t: 'follow', cursor, window: Math.max(0, this.feedWindow - queued) });
  }

  /** The consumer took a frame of the hub's: grants a quarter of the window at a time. */
  private taken(): void {
    if (++this.ungranted < Math.max(1, this.feedWindow >> 2)) return;
    this.sendJson({ t: 'feed-credit', n: this.ungranted });
    this.ungranted = 0;
  }

  private sendJson(frame: Record<string, unknown>): void {
    const ws = this.ws;
    if (ws?.readyState !== WebSocket.OPEN) return;
    ws.send(JSON.stringify(frame), this.written);
  }

  private uploadLink(): UploadLink {
    return {
      isOnline: () => this.stateValue === 'online',
      held: () => this.uploadsHeld,
      welcome: () => this.welcomeFrame,
      appliedSeq: () => this.applied,
      request: (frame) => this.request(frame),
      sendChunk: (hash, data) => {
        const ws = this.ws;
        if (ws?.readyState === WebSocket.OPEN) ws.send(encodeChunkFrame(hash, data), { binary: true }, this.written);
      },
      drain: () => {
        const ws = this.ws;
        if (!ws || ws.bufferedAmount <= SEND_HIGH_BYTES) return Promise.resolve();
        return new Promise((resolve) => this.drainWaiters.push(resolve));
      },
      retryLater: (reason) => {
        this.log(`${reason}; reconnecting to send again`);
        this.ws?.terminate();
      },
    };
  }

  /** Sends a request with a fresh id; resolves with the reply of that id, rejects on its error frame or a lost connection. */
  private request(frame: Record<string, unknown>): Promise<unknown> {
    const ws = this.ws;
    if (this.stateValue !== 'online' || ws?.readyState !== WebSocket.OPEN) return Promise.reject(new AetherError('BRIDGE_CLOSED', 'not connected'));
    const id = this.nextId++;
    const text = JSON.stringify({ ...frame, id });
    const limit = this.welcomeFrame?.limits.maxFrameBytes;
    const bytes = Buffer.byteLength(text);
    if (limit !== undefined && bytes > limit) {
      return Promise.reject(new AetherError('BRIDGE_REJECTED', `a ${String(frame.t)} frame of ${bytes} bytes is larger than the hub takes (${limit}); send smaller batches`));
    }
    return new Promise((resolve, reject) => {
      this.requests.set(id, { resolve, reject });
      ws.send(text, this.written);
    });
  }

  /** Stops for good: closes the connection, fails what was not acknowledged, ends the feed. */
  async close(): Promise<void> {
    if (this.stateValue === 'stopped') return;
    this.setState('stopped');
    if (this.retryTimer) this.clock.clearTimeout(this.retryTimer);
    clearTimeout(this.idleTimer);
    const closed = new AetherError('BRIDGE_CLOSED', 'the bridge client is closed');
    this.uploader.failAll(closed);
    for (const w of this.wanted.values()) w.reject(closed);
    this.wanted.clear();
    this.feedQueue.end();
    const ws = this.ws;
    if (ws && ws.readyState !== WebSocket.CLOSED) {
      await new Promise<void>((resolve) => {
        ws.once('close', () => resolve());
        ws.close(1000, 'client closing');
        setTimeout(() => ws.terminate(), 1000).unref();
      });
    }
  }
}
