import { statfs as nodeStatfs } from 'node:fs/promises';
import type { Clock, TimerHandle } from '../infra/clock.js';

/** The part of `fs.statfs` the cache uses; injectable so tests can play a filling disk. */
export type StatfsFn = (path: string) => Promise<{ bavail: number | bigint; bsize: number | bigint }>;

export const defaultStatfs: StatfsFn = (path) => nodeStatfs(path);

export interface DiskFreeOptions {
  path: string;
  clock: Clock;
  statfs: StatfsFn;
  pollMs: number;
  /** Called when a measurement changes the estimate. */
  onChange(): void;
  onError(err: unknown): void;
}

/**
 * Free bytes of the file system holding the cache, for the `disk_free` backpressure reason.
 * `statfs` is too slow to call on every write, so it runs on a timer and on demand, and between
 * measurements the bytes the cache writes are subtracted: the estimate only errs on the safe side
 * (an overwrite uses no new space) and is corrected by the next measurement. Free means available
 * to an unprivileged user (`bavail`), which is what the cache can actually use.
 */
export class DiskFree {
  private measured: number | null = null;
  private writtenSince = 0;
  private inFlight: Promise<number | null> | null = null;
  private timer: TimerHandle | null = null;
  private stopped = false;

  constructor(private readonly opts: DiskFreeOptions) {}

  get freeBytes(): number | null {
    return this.measured === null ? null : Math.max(0, this.measured - this.writtenSince);
  }

  noteWritten(bytes: number): void {
    this.writtenSince += bytes;
  }

  /** Measures now (joining a measurement already running). */
  refresh(): Promise<number | null> {
    this.inFlight ??= this.measure().finally(() => (this.inFlight = null));
    return this.inFlight;
  }

  start(): void {
    this.stopped = false;
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) this.opts.clock.clearTimeout(this.timer);
    this.timer = null;
  }

  private schedule(): void {
    if (this.stopped || this.opts.pollMs <= 0) return;
    this.timer = this.opts.clock.setTimeout(() => {
      this.timer = null;
      void this.refresh().finally(() => this.schedule());
    }, this.opts.pollMs);
    this.timer.unref?.();
  }

  private async measure(): Promise<number | null> {
    const before = this.freeBytes;
    const startedWith = this.writtenSince;
    try {
      const s = await this.opts.statfs(this.opts.path);
      this.measured = Number(s.bavail) * Number(s.bsize);
      // Bytes noted while statfs ran may or may not be in its answer; keep them subtracted.
      this.writtenSince -= startedWith;
    } catch (err) {
      this.opts.onError(err);
    }
    if (this.freeBytes !== before) this.opts.onChange();
    return this.freeBytes;
  }
}
