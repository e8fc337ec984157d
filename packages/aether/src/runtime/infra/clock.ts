/** Time and timers, injected wherever behaviour depends on them so tests can be exact. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

export interface TimerHandle {
  unref?(): void;
}

/** The longest delay one Node timer holds; a longer one fires after 1 ms (with a warning). */
export const TIMER_MS_MAX = 2 ** 31 - 1;

/** A wait longer than one Node timer holds, as a chain of them (settings allow such waits). */
class LongTimeout implements TimerHandle {
  private timer: NodeJS.Timeout;
  private unrefed = false;

  constructor(fn: () => void, ms: number) {
    this.timer = this.arm(fn, ms);
  }

  private arm(fn: () => void, left: number): NodeJS.Timeout {
    const t = setTimeout(() => {
      if (left > TIMER_MS_MAX) this.timer = this.arm(fn, left - TIMER_MS_MAX);
      else fn();
    }, Math.min(left, TIMER_MS_MAX));
    if (this.unrefed) t.unref();
    return t;
  }

  unref(): void {
    this.unrefed = true;
    this.timer.unref();
  }

  clear(): void {
    clearTimeout(this.timer);
  }
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => (ms > TIMER_MS_MAX ? new LongTimeout(fn, ms) : setTimeout(fn, ms)),
  clearTimeout: (h) => (h instanceof LongTimeout ? h.clear() : clearTimeout(h as NodeJS.Timeout)),
};

/** A manual clock for tests: time moves only when `advance` is called; due timers fire in order. */
export class ManualClock implements Clock {
  private t: number;
  private seq = 0;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();

  constructor(startMs = 1_700_000_000_000) {
    this.t = startMs;
  }

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + Math.max(0, ms), fn });
    return { id } as TimerHandle;
  }

  clearTimeout(handle: TimerHandle): void {
    this.timers.delete((handle as { id: number }).id);
  }

  get pendingTimers(): number {
    return this.timers.size;
  }

  /** Moves time forward by `ms`, firing every timer that falls due, earliest first. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.timers) if (e[1].at <= end && (!next || e[1].at < next[1].at || (e[1].at === next[1].at && e[0] < next[0]))) next = e;
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
    }
    this.t = end;
  }
}
