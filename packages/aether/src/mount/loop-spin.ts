/**
 * Keeps the event loop polling for a short window after each FUSE request instead of letting it
 * sleep in epoll_wait. fuse-native hands every request to the loop with uv_async_send, and the
 * threadpool reports each finished fdatasync or pwrite the same way: when the loop sleeps, each of
 * those is a thread wake-up on another CPU, which on the development VM costs more than the
 * handlers themselves. A program's requests follow each other within tens of microseconds (a
 * `stat`, then the next; an `unlink`, then the next lookup), so a loop that is still polling
 * takes the next one at once (FUSE.md "Where a request's time goes": `rm -r`, `tar x`,
 * write+fsync and `stat` 1.4-1.9x faster). The price is CPU: at most one core for the window after
 * the last request, nothing while the mount is idle.
 */
export class LoopSpin {
  private until = 0n;
  private running = false;

  constructor(
    private readonly windowNs: bigint,
    private readonly now: () => bigint = process.hrtime.bigint,
    private readonly schedule: (fn: () => void) => void = setImmediate,
  ) {}

  /** A request arrived: poll until `windowNs` after now. */
  poke(): void {
    if (this.windowNs <= 0n) return;
    this.until = this.now() + this.windowNs;
    if (this.running) return;
    this.running = true;
    this.schedule(this.turn);
  }

  /** True while the loop is kept polling. */
  get active(): boolean {
    return this.running;
  }

  // A pending setImmediate makes libuv poll with timeout 0; one chain at a time.
  private readonly turn = (): void => {
    if (this.now() < this.until) this.schedule(this.turn);
    else this.running = false;
  };
}
