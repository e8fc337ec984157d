import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { AetherError } from '@aether/core/errors';
import { createRegistry, type Registry } from '@aether/core/metrics/registry';
import { MetricsServer } from '@aether/core/metrics/server';
import { CLOSE_REPLACED, CLOSE_SHUTDOWN, type BatchFrame } from '../protocol/frames.js';
import { TokenCheck } from './auth.js';
import { ChunkReclaimer } from './chunk-reclaim.js';
import type { CommitOutcome } from './commit.js';
import { HubMetrics } from './metrics.js';
import { parseListen, withDefaults, type HubOptions, type HubOptionsInput } from './options.js';
import { Session } from './session.js';
import { openHubStorage } from './open-storage.js';
import type { HubStorage } from './storage.js';
import type { MountRow } from './tables.js';

/**
 * The hub: the committed tree and the changefeed in its storage (embedded, or a PostgreSQL
 * database several hubs share), and a WebSocket server (ws://, or wss:// with a certificate) that
 * mounts upload batches to and follow the feed from. Commits are serialised by the storage; each
 * is durable before it is acknowledged. See PROTOCOL.md and POSTGRES.md.
 */
export class Hub {
  readonly opts: HubOptions;
  readonly storage: HubStorage;
  readonly tokens: TokenCheck;
  readonly registry: Registry;
  readonly metrics: HubMetrics;
  readonly hubId: string;
  readonly pageRows: number;
  private readonly sessions = new Set<Session>();
  private readonly byMount = new Map<string, Session>();
  private readonly http: Server;
  private readonly wss: WebSocketServer;
  private readonly metricsServer: MetricsServer;
  private readonly heartbeat: NodeJS.Timeout;
  private readonly reclaimer: ChunkReclaimer;
  private closing: Promise<void> | undefined;
  /** `host:port` actually bound. */
  address = '';
  metricsAddress: string | undefined;

  private constructor(opts: HubOptions, storage: HubStorage) {
    this.opts = opts;
    this.pageRows = opts.pageRows;
    this.storage = storage;
    this.hubId = storage.hubId;
    // Another hub on the same database committed: followers of this one hear of it too.
    storage.onRemoteCommit(() => this.wakeFeeds());
    this.tokens = new TokenCheck(opts.token);
    this.registry = opts.registry ?? createRegistry();
    this.metrics = new HubMetrics(this.registry, { connectedMounts: () => this.byMount.size, changefeedSeq: () => this.storage.hubSeq });
    this.metricsServer = new MetricsServer(this.registry);
    const refuse = (_req: IncomingMessage, res: ServerResponse): void => void res.writeHead(426, { 'content-type': 'text/plain' }).end('aether hub: connect with a WebSocket client (ws:// or wss://)\n');
    this.http = opts.tls ? createHttpsServer({ cert: opts.tls.cert, key: opts.tls.key }, refuse) : createHttpServer(refuse);
    // perMessageDeflate stays off: chunks are often incompressible, and compression would let a
    // small frame inflate past the frame limit after the limit was checked.
    this.wss = new WebSocketServer({ server: this.http, maxPayload: opts.maxFrameBytes, perMessageDeflate: false });
    this.wss.on('connection', (ws, req) => this.accept(ws, req));
    // ws re-emits the HTTP server's errors; a failed listen is reported by listen() itself.
    this.wss.on('error', (err) => {
      if (this.address !== '') this.log(`server error: ${err.message}`);
    });
    this.heartbeat = setInterval(() => this.beat(), opts.heartbeatMs);
    this.heartbeat.unref();
    this.reclaimer = new ChunkReclaimer(
      storage,
      opts.chunkGraceMs,
      opts.nowMs,
      (r) => {
        this.metrics.chunksReclaimed.inc(r.dropped);
        this.metrics.chunkBytesReclaimed.inc(r.freedBytes);
        this.metrics.chunksDying.set(r.dying);
        if (r.dropped > 0) this.log(`reclaimed ${r.dropped} chunk(s) no longer named for ${opts.chunkGraceMs / 1000} s, ${r.freedBytes} bytes; ${r.dying} more waiting out the grace period`);
      },
      (err) => this.log(`chunk reclaim failed (tried again later): ${err instanceof Error ? err.message : String(err)}`),
    );
  }

  static async start(input: HubOptionsInput): Promise<Hub> {
    const opts = withDefaults(input);
    const hub = new Hub(opts, await openHubStorage(opts));
    try {
      await hub.listen();
    } catch (err) {
      await hub.close();
      throw err;
    }
    return hub;
  }

  private async listen(): Promise<void> {
    const { host, port } = parseListen(this.opts.listen, 'listen');
    await new Promise<void>((resolve, reject) => {
      this.http.once('error', (err) => reject(new AetherError('HUB_LISTEN_FAILED', `cannot listen on ${this.opts.listen}: ${err.message}`, { cause: err })));
      this.http.listen(port, host, () => resolve());
    });
    const a = this.http.address() as AddressInfo;
    this.address = `${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
    this.metricsAddress = await this.metricsServer.listen(this.opts.metricsListen).catch((err: Error) => {
      throw new AetherError('HUB_LISTEN_FAILED', `cannot serve metrics on ${this.opts.metricsListen}: ${err.message}`, { cause: err });
    });
  }

  get url(): string {
    return `${this.opts.tls ? 'wss' : 'ws'}://${this.address}`;
  }

  /** The newest committed changefeed sequence this hub knows of. */
  get hubSeq(): number {
    return this.storage.hubSeq;
  }

  log(line: string): void {
    // Names and messages come from clients: keep the log one line, and short.
    // eslint-disable-next-line no-control-regex -- control characters are exactly what must go
    this.opts.log(`aether hub: ${line.replace(/[\x00-\x1f\x7f]/g, '?').slice(0, 500)}`);
  }

  private accept(ws: WebSocket, req: IncomingMessage): void {
    const remote = `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? '?'}`;
    this.metrics.connectionsTotal.inc();
    if (this.closing || this.sessions.size >= this.opts.maxConnections) {
      this.metrics.rejected.inc({ reason: 'BUSY' });
      this.log(`rejected BUSY from ${remote}: ${this.closing ? 'shutting down' : `${this.sessions.size} connections already`}`);
      ws.send(JSON.stringify({ t: 'error', code: 'BUSY', message: 'the hub is at its connection limit or stopping; retry later', fatal: true }));
      ws.close(1013, 'BUSY');
      return;
    }
    this.sessions.add(new Session(this, ws, remote, req.socket));
  }

  private beat(): void {
    for (const s of this.sessions) {
      // Closing already (a drop waits for the close handshake): logged once.
      if (!s.open) continue;
      // Three beats, as the mount waits: a mount whose event loop stalls for one beat (a long
      // collection, a busy CI machine) keeps its connection.
      if (s.heardSincePing()) s.unanswered = 0;
      if (s.unanswered >= 3) {
        // Decided after this turn's reads: after a stall of the hub, answers may wait unread.
        setImmediate(() => {
          if (s.heardSincePing() || s.unanswered < 3) return;
          this.log(`dropping ${s.remote}${s.mountId ? ` (mount ${s.mountId})` : ''}: no answer to the last 3 pings (one every ${this.opts.heartbeatMs} ms)`);
          s.close(1001, 'heartbeat timeout');
        });
        continue;
      }
      s.unanswered++;
      s.ping();
    }
  }

  /** The mount's row, registering a new mount id under the next mount number. */
  register(mountId: string): Promise<MountRow> {
    return this.storage.register(mountId, this.opts.nowMs());
  }

  /** A mount is connected: an older connection of the same mount is stale (it reconnected) and goes. */
  attach(s: Session): void {
    const old = this.byMount.get(s.mountId);
    if (old && old !== s) {
      this.log(`mount ${s.mountId} reconnected from ${s.remote}: closing its older connection ${old.remote}`);
      old.close(CLOSE_REPLACED, 'replaced by a newer connection of the same mount');
    }
    this.byMount.set(s.mountId, s);
  }

  detach(s: Session): void {
    this.sessions.delete(s);
    if (this.byMount.get(s.mountId) === s) this.byMount.delete(s.mountId);
  }

  /** Commits a batch of `s`'s mount durably; followers hear of it once it is committed. */
  async commit(s: Session, batch: BatchFrame): Promise<CommitOutcome> {
    const started = performance.now();
    const outcome = await this.storage.commit({ mountId: s.mountId, mountNo: s.mountNo, batch, staged: s.staged, nowMs: this.opts.nowMs(), feedRetainEntries: this.opts.feedRetainEntries });
    if (outcome.duplicate) {
      this.metrics.duplicateBatches.inc();
      return outcome;
    }
    this.metrics.commits.inc();
    this.metrics.commitSeconds.observe((performance.now() - started) / 1000);
    for (const r of outcome.resolutions) if (r.kind === 'renamed' || r.kind === 'conflict-copy') this.metrics.conflicts.inc({ kind: r.kind });
    if (outcome.hubSeq !== null) this.wakeFeeds();
    this.reclaimer.committed();
    return outcome;
  }

  private wakeFeeds(): void {
    for (const s of this.sessions) s.wakeFeed();
  }

  onSnapshot(): void {
    this.metrics.snapshots.inc();
  }

  /** Stops accepting, closes every connection, lets the commit in flight finish, closes the storage. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    clearInterval(this.heartbeat);
    await this.reclaimer.close();
    for (const s of this.sessions) s.close(CLOSE_SHUTDOWN, 'hub stopping');
    this.wss.close();
    await new Promise<void>((resolve) => (this.http.listening ? this.http.close(() => resolve()) : resolve()));
    this.http.closeAllConnections();
    await this.metricsServer.close();
    await this.storage.close();
  }
}
