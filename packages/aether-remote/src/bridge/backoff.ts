import { jitterFactor, type ConfigStore, type ReconnectBackoffConfig } from '@aether/core';

/** A uniform random number in [0, 1), like Math.random; injected so tests are exact. */
export type Random01 = () => number;

export interface BackoffStep {
  /** 0 for the first retry after a disconnect or failed connect. */
  attempt: number;
  baseMs: number;
  delayMs: number;
}

function checkParams(p: ReconnectBackoffConfig): ReconnectBackoffConfig {
  const ok = p.start_ms > 0 && p.max_ms >= p.start_ms && p.multiplier >= 1 && p.jitter_percent >= 0 && p.jitter_percent <= 100;
  if (!ok) throw new RangeError(`invalid reconnect backoff ${JSON.stringify(p)}: need start_ms > 0, max_ms ≥ start_ms, multiplier ≥ 1, jitter_percent in 0..100`);
  return { ...p };
}

/**
 * The bridge's reconnect policy (seeds 003 and 004, DESIGN §6). Attempt n:
 *   base  = min(max_ms, start_ms × multiplier^n)
 *   delay = min(max_ms, base × (1 + f × u)),  f = jitter_percent / 100,  u uniform in [-1, 1]
 * The attempt counter resets when a connection completes its handshake. New parameters (a config
 * reload) apply from the next attempt; the attempt counter is kept.
 */
export class ReconnectBackoff {
  private params: ReconnectBackoffConfig;
  private attempt = 0;
  private unsubscribe: (() => void) | undefined;

  constructor(
    params: ReconnectBackoffConfig,
    private readonly random: Random01 = Math.random,
  ) {
    this.params = checkParams(params);
  }

  /** Follows `[bridge.reconnect_backoff]` of a live configuration: a reload applies from the next attempt. */
  static fromConfig(config: ConfigStore, random: Random01 = Math.random): ReconnectBackoff {
    const backoff = new ReconnectBackoff(config.current.bridge.reconnect_backoff, random);
    backoff.unsubscribe = config.observe('bridge.reconnect_backoff', () => backoff.update(config.current.bridge.reconnect_backoff));
    return backoff;
  }

  get current(): Readonly<ReconnectBackoffConfig> {
    return this.params;
  }

  /** The attempt the next `next()` call is for. */
  get attempts(): number {
    return this.attempt;
  }

  baseMs(attempt: number): number {
    const { start_ms, max_ms, multiplier } = this.params;
    return Math.min(max_ms, start_ms * multiplier ** attempt);
  }

  /** The delay before the next attempt; advances the attempt counter. */
  next(): BackoffStep {
    const attempt = this.attempt++;
    const baseMs = this.baseMs(attempt);
    const u = 2 * this.random() - 1;
    const delayMs = Math.min(this.params.max_ms, baseMs * (1 + jitterFactor(this.params) * u));
    return { attempt, baseMs, delayMs };
  }

  /** A handshake completed: the next disconnect starts again at attempt 0. */
  reset(): void {
    this.attempt = 0;
  }

  update(params: ReconnectBackoffConfig): void {
    this.params = checkParams(params);
  }

  /** Stops following the configuration. */
  close(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
  }
}
