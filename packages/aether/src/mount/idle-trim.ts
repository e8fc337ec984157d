import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * Gives memory back to the system once the mount has been quiet for a while after work: a full
 * collection of V8's heap (V8 collects when JS allocates, and an idle mount allocates nothing: a
 * review saw 617 MB of garbage kept on an idle mount's heap), then what the C library freed. glibc keeps what each thread's arena freed resident for reuse, and the FUSE
 * threads' request buffers among others fill several 64 MiB arenas during a burst: a mount idle
 * after 60,000 random 4 KiB writes held 686 MB, 334 MB after a trim (a scale review). Once per
 * quiet spell: a trim costs a walk of the free lists, and an idle mount has nothing new to give.
 */
export const IDLE_TRIM_MS = 10_000;

/** V8's full collection, which Node exposes only under --expose-gc: the flag is set for a context made here. */
function fullCollection(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

export class IdleTrim {
  private lastActivityMs = performance.now();
  private trimmedAtMs = -Infinity;
  private readonly timer: NodeJS.Timeout;
  private readonly collect = fullCollection();

  /**
   * `lastRequestMs`: when the mount last served a FUSE request (performance.now()); `trim`:
   * malloc_trim; `onTrim`: how much smaller the resident set became, in bytes.
   */
  constructor(
    private readonly lastRequestMs: () => number,
    private readonly trim: () => boolean,
    private readonly onTrim: (freedBytes: number) => void,
    private readonly quietMs = IDLE_TRIM_MS,
  ) {
    this.timer = setInterval(() => this.check(), Math.max(100, quietMs / 4));
    this.timer.unref();
  }

  /** Work that is no FUSE request (a commit, a change from the hub) happened now. */
  active(): void {
    this.lastActivityMs = performance.now();
  }

  private check(): void {
    const last = Math.max(this.lastActivityMs, this.lastRequestMs());
    if (last <= this.trimmedAtMs || performance.now() - last < this.quietMs) return;
    this.trimmedAtMs = performance.now();
    const before = process.memoryUsage.rss();
    // Buffers the collection frees go back to the C library first, then to the system.
    this.collect();
    this.trim();
    this.onTrim(Math.max(0, before - process.memoryUsage.rss()));
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
