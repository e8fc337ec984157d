import { chmodSync, existsSync, lstatSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { COMMANDS, MAX_REQUEST_BYTES, type CommandName, type ControlReply, type ControlRequest } from './protocol.js';
import { AetherError } from '../errors.js';

export type Handler = (args: Record<string, unknown>) => unknown;

/** True when something answers on the socket (a live mount), false when it is a leftover file. */
function socketIsLive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** How often the socket file is checked for removal. */
const SOCKET_CHECK_MS = 2000;

/**
 * Serves control commands. Handlers run on the event loop but never wait on the backpressure
 * gate, so control stays responsive while writers are blocked.
 */
export class ControlServer {
  private server: Server | undefined;
  /** Set once this server listens on `path`: only then is the socket file its own to remove. */
  private owner = false;
  private readonly sockets = new Set<Socket>();
  /** The socket file's inode, to see it removed or replaced. */
  private ino: number | undefined;
  private watch: NodeJS.Timeout | undefined;
  private closing = false;

  constructor(
    readonly path: string,
    private readonly handlers: Partial<Record<CommandName, Handler>>,
  ) {}

  async listen(): Promise<void> {
    if (existsSync(this.path)) {
      if (lstatSync(this.path).isDirectory()) throw new AetherError('STATE_DIR_INVALID', `${this.path} is a directory where the control socket goes: remove it`);
      if (await socketIsLive(this.path)) throw new Error(`another mount is already using the control socket ${this.path}`);
      rmSync(this.path, { force: true });
    }
    const server = createServer((sock) => this.serve(sock));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => {
        // A state directory on a FUSE file system (another Aether mount): "listen ENOTSUP", naming nothing (a review).
        if (err.code === 'ENOTSUP' || err.code === 'EOPNOTSUPP') reject(new AetherError('STATE_DIR_INVALID', `${this.path}: the state directory's file system cannot hold a Unix socket (${err.code}; a FUSE mount, such as another Aether mount?): use a state directory on a local disk`, { cause: err }));
        else reject(err);
      });
      // Create the socket with no access for others, then tighten to exactly 0600.
      const old = process.umask(0o177);
      try {
        server.listen(this.path, () => resolve());
      } finally {
        process.umask(old);
      }
    });
    this.owner = true;
    chmodSync(this.path, 0o600);
    this.ino = lstatSync(this.path).ino;
    this.watch ??= setInterval(() => void this.listenAgainIfGone(), SOCKET_CHECK_MS).unref();
  }

  /**
   * The socket file removed (a cleanup of the state directory, by hand or by a tool): no command
   * reached the running mount again, and the CLI said no mount was running (a review). Made again.
   */
  private async listenAgainIfGone(): Promise<void> {
    let ino: number | undefined;
    try {
      ino = lstatSync(this.path).ino;
    } catch {
      // Gone.
    }
    if (this.closing || (this.owner && ino === this.ino)) return;
    if (this.owner) {
      this.owner = false;
      this.server?.close();
    }
    try {
      await this.listen();
    } catch {
      // Another's socket took the path: tried again at the next check.
      return;
    }
    if (this.closing) await this.close();
  }

  private serve(sock: Socket): void {
    this.sockets.add(sock);
    sock.on('close', () => this.sockets.delete(sock));
    sock.on('error', () => sock.destroy());
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('data', (chunk: string) => {
      buf += chunk;
      if (buf.length > MAX_REQUEST_BYTES) {
        this.reply(sock, { ok: false, error: `request longer than ${MAX_REQUEST_BYTES} bytes` });
        sock.end();
        return;
      }
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        void this.handle(line).then((r) => this.reply(sock, r));
      }
    });
  }

  private reply(sock: Socket, r: ControlReply): void {
    if (!sock.destroyed) sock.write(JSON.stringify(r) + '\n');
  }

  private async handle(line: string): Promise<ControlReply> {
    let req: ControlRequest;
    try {
      req = JSON.parse(line) as ControlRequest;
    } catch {
      return { ok: false, error: 'request is not valid JSON' };
    }
    if (typeof req !== 'object' || req === null || !COMMANDS.includes(req.cmd)) return { ok: false, error: `unknown command ${JSON.stringify((req as { cmd?: unknown } | null)?.cmd)}` };
    const h = this.handlers[req.cmd];
    if (!h) {
      // The mount puts its handlers in place once it has opened (after its journal replay).
      const starting = Object.keys(this.handlers).length === 0;
      return { ok: false, error: starting ? 'the mount is still starting (replaying its journal or waiting for its hub); try again shortly' : `${req.cmd} is not available on this mount` };
    }
    try {
      return { ok: true, result: await h(typeof req.args === 'object' && req.args !== null ? req.args : {}) };
    } catch (err) {
      return { ok: false, error: err instanceof Error ? err.message : String(err) };
    }
  }

  async close(): Promise<void> {
    this.closing = true;
    clearInterval(this.watch);
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    if (this.owner) rmSync(this.path, { force: true });
  }
}
