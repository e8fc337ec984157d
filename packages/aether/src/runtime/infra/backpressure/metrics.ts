import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { CACHE_REASONS, JOURNAL_REASONS } from './rules.js';

export const BACKPRESSURE_METRIC = {
  engaged: 'aether_backpressure_engaged',
  transitionsTotal: 'aether_backpressure_transitions_total',
  waitSeconds: 'aether_backpressure_wait_seconds',
  waitingWriters: 'aether_backpressure_waiting_writers',
} as const;

export type Source = 'journal' | 'cache';
export type Transition = 'engage' | 'clear';

interface ReasonSeries {
  engaged: Gauge.Internal<string>;
  engage: Counter.Internal;
  clear: Counter.Internal;
}

/** The coordinator's metrics, with every label set bound up front so a transition costs no lookups. */
export class BackpressureMetrics {
  private readonly series = new Map<string, ReasonSeries>();
  readonly waitSeconds: Histogram<string>;

  constructor(registry: Registry, waitingWriters: () => number) {
    const engaged = new Gauge({
      name: BACKPRESSURE_METRIC.engaged,
      help: 'Whether backpressure is engaged (1) or not (0), by source and reason.',
      labelNames: ['source', 'reason'],
      registers: [registry],
    });
    const transitions = new Counter({
      name: BACKPRESSURE_METRIC.transitionsTotal,
      help: 'Backpressure transitions, by source, reason and transition (engage or clear).',
      labelNames: ['source', 'reason', 'transition'],
      registers: [registry],
    });
    this.waitSeconds = new Histogram({
      name: BACKPRESSURE_METRIC.waitSeconds,
      help: 'Time writers waited at the backpressure gate, in seconds (only writers that had to wait).',
      buckets: [0.001, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
      registers: [registry],
    });
    new Gauge({
      name: BACKPRESSURE_METRIC.waitingWriters,
      help: 'Writers currently waiting at the backpressure gate.',
      registers: [registry],
      collect() {
        this.set(waitingWriters());
      },
    });
    const sources: [Source, readonly (readonly [string, number])[]][] = [
      ['journal', JOURNAL_REASONS],
      ['cache', CACHE_REASONS],
    ];
    for (const [source, reasons] of sources) {
      for (const [reason] of reasons) {
        const s: ReasonSeries = {
          engaged: engaged.labels(source, reason),
          engage: transitions.labels(source, reason, 'engage'),
          clear: transitions.labels(source, reason, 'clear'),
        };
        s.engaged.set(0);
        s.engage.inc(0);
        s.clear.inc(0);
        this.series.set(`${source}/${reason}`, s);
      }
    }
  }

  transition(source: Source, reason: string, t: Transition): void {
    const s = this.series.get(`${source}/${reason}`);
    if (!s) throw new Error(`unknown backpressure reason ${source}/${reason}`);
    s.engaged.set(t === 'engage' ? 1 : 0);
    (t === 'engage' ? s.engage : s.clear).inc();
  }
}
