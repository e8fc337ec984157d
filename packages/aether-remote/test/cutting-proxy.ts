import { connect, createServer, type Server, type Socket } from 'node:net';

export interface CutWindow {
  /** Shortest life of a connection while cutting, in ms. */
  minMs: number;
  /** Longest life of a connection while cutting, in ms. */
  maxMs: number;
}

/**
 * A TCP proxy between a bridge client (or a mount) and a hub. While `cutting` is on it cuts every
 * connection after a random time in the cut window: the two sides see connections die at arbitrary
 * points of the protocol (mid-frame, between a commit and its ack, mid-snapshot). While `down()` it
 * cuts every connection at once and every new one as it arrives: the hub is unreachable for the
 * client, yet up for everyone else.
 */
export class CuttingProxy {
  cuts = 0;
  private cuttingOn = true;
  private isDown = false;
  private readonly server: Server;
  private readonly live = new Set<Socket>();
  /** Client side of each live connection → its hub side. */
  private readonly pairs = new Map<Socket, Socket>();
  /** Cut the connection whose hub side next sends bytes holding this, before they are passed on. */
  private cutAtBytes: Buffer | undefined;
  private downAtCut = false;
  /**
   * While on, what clients send is dropped and nothing is cut: the way to the hub is gone while
   * the hub's frames still arrive (a one-way partition). A connection made meanwhile gets no welcome.
   */
  blackholeToHub = false;
  /** When not 0, what clients send goes on at no more than this many bytes a second (a slow uplink). */
  toHubBytesPerSecond = 0;

  constructor(
    private readonly upstreamPort: number,
    private readonly random: () => number,
    private readonly window: CutWindow = { minMs: 5, maxMs: 60 },
  ) {
    this.server = createServer((down) => this.accept(down));
  }

  private accept(down: Socket): void {
    if (this.isDown) {
      down.destroy();
      return;
    }
    const up = connect(this.upstreamPort, '127.0.0.1');
    for (const s of [down, up]) {
      this.live.add(s);
      s.on('error', () => undefined);
      s.on('close', () => this.live.delete(s));
    }
    this.pairs.set(down, up);
    down.on('data', (chunk: Buffer) => {
      if (this.blackholeToHub) return;
      if (this.toHubBytesPerSecond > 0) {
        down.pause();
        setTimeout(() => down.resume(), (chunk.length / this.toHubBytesPerSecond) * 1000);
      }
      if (!up.write(chunk)) {
        down.pause();
        up.once('drain', () => down.resume());
      }
    });
    up.on('data', (chunk: Buffer) => {
      if (this.cutAtBytes && chunk.includes(this.cutAtBytes)) {
        this.cutAtBytes = undefined;
        this.cuts++;
        if (this.downAtCut) this.isDown = true;
        down.destroy();
        up.destroy();
        return;
      }
      if (!down.write(chunk)) {
        up.pause();
        down.once('drain', () => up.resume());
      }
    });
    down.on('close', () => {
      this.pairs.delete(down);
      up.destroy();
    });
    up.on('close', () => down.destroy());
    if (this.cuttingOn) this.scheduleCut(down, up);
  }

  private scheduleCut(down: Socket, up: Socket): void {
    const { minMs, maxMs } = this.window;
    setTimeout(() => {
      if (!this.cuttingOn || down.destroyed) return;
      this.cuts++;
      down.destroy();
      up.destroy();
    }, minMs + this.random() * (maxMs - minMs));
  }

  get cutting(): boolean {
    return this.cuttingOn;
  }

  /** Turned on, it also cuts the connections already open. */
  set cutting(on: boolean) {
    const was = this.cuttingOn;
    this.cuttingOn = on;
    if (on && !was) for (const [down, up] of this.pairs) this.scheduleCut(down, up);
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', () => resolve()));
    return (this.server.address() as { port: number }).port;
  }

  /**
   * Cuts the next connection whose hub side sends `text` (within one read), dropping those bytes:
   * e.g. an ack after the hub committed the batch. Frames are unmasked from the hub, so text shows.
   * `thenDown`: and refuse new connections until `up()`, so the client cannot come back at once.
   */
  cutAt(text: string, thenDown = false): void {
    this.cutAtBytes = Buffer.from(text);
    this.downAtCut = thenDown;
  }

  /** Cuts every connection and refuses new ones until `up()`. */
  down(): void {
    this.isDown = true;
    for (const s of this.live) s.destroy();
  }

  up(): void {
    this.isDown = false;
  }

  async close(): Promise<void> {
    for (const s of this.live) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
