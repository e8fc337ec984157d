import { AetherError } from '../../../errors.js';
import type { Clock } from '../clock.js';

interface Waiter {
  resolve(): void;
  reject(err: Error): void;
  sinceMs: number;
}

export interface GateOptions {
  clock: Clock;
  /** Bound on queued writers; past it `admit()` fails with BACKPRESSURE_QUEUE_FULL (EAGAIN). */
  maxWaiters: number;
  /** Called with each released writer's wait, in seconds. */
  onWaited(seconds: number): void;
}

const ADMITTED: Promise<void> = Promise.resolve();

/**
 * The gate every writer passes. Open: `isOpen` is true and `admit()` returns an already-resolved
 * promise, so a caller on the hot path can skip the await entirely (`if (!gate.isOpen) await
 * gate.admit()`). Shut: writers queue and are released in arrival order when it opens again.
 * Only writers use it; reads, metadata reads and control commands never touch it.
 */
export class WriteGate {
  private open = true;
  private closedError: AetherError | null = null;
  private queue: Waiter[] = [];

  constructor(private readonly opts: GateOptions) {}

  get isOpen(): boolean {
    return this.open;
  }

  /** Writers currently waiting. */
  get waiting(): number {
    return this.queue.length;
  }

  /** `signal`: an abort takes the writer out of the queue and rejects with the signal's reason. */
  admit(signal?: AbortSignal): Promise<void> {
    if (this.open) return ADMITTED;
    if (this.closedError) return Promise.reject(this.closedError);
    if (this.waiting >= this.opts.maxWaiters) {
      return Promise.reject(new AetherError('BACKPRESSURE_QUEUE_FULL', `backpressure: ${this.opts.maxWaiters} writers already waiting`, { errno: 'EAGAIN' }));
    }
    return new Promise<void>((resolve, reject) => {
      const w: Waiter = { resolve, reject, sinceMs: this.opts.clock.now() };
      this.queue.push(w);
      signal?.addEventListener(
        'abort',
        () => {
          const at = this.queue.indexOf(w);
          if (at < 0) return;
          this.queue.splice(at, 1);
          reject(signal.reason as Error);
        },
        { once: true },
      );
    });
  }

  /** Opens or shuts the gate; opening releases every waiter, oldest first. Used by the coordinator. */
  setOpen(open: boolean): void {
    if (this.closedError || open === this.open) return;
    this.open = open;
    if (open) this.releaseAll();
  }

  /** Shuts the gate for good: queued and future writers are rejected with BACKPRESSURE_CLOSED (EIO). */
  close(reason = 'backpressure gate closed: shutting down'): void {
    if (this.closedError) return;
    this.closedError = new AetherError('BACKPRESSURE_CLOSED', reason, { errno: 'EIO' });
    this.open = false;
    const waiters = this.queue;
    this.queue = [];
    for (const w of waiters) w.reject(this.closedError);
  }

  private releaseAll(): void {
    const now = this.opts.clock.now();
    const waiters = this.queue;
    this.queue = [];
    for (const w of waiters) {
      this.opts.onWaited(Math.max(0, now - w.sinceMs) / 1000);
      w.resolve();
    }
  }
}
