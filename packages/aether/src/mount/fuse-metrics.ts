import { Counter, Histogram, type Registry } from 'prom-client';

/** FUSE operation counts and latencies, by operation. */
export class FuseMetrics {
  readonly ops: Counter<'op' | 'result'>;
  readonly latency: Histogram<'op'>;

  constructor(registry: Registry) {
    this.ops = new Counter({ name: 'aether_fuse_ops_total', help: 'FUSE operations answered, by operation and result (ok or the errno)', labelNames: ['op', 'result'], registers: [registry] });
    this.latency = new Histogram({
      name: 'aether_fuse_op_duration_seconds',
      help: 'Time from a FUSE request reaching Aether to its reply, by operation (includes backpressure waits)',
      labelNames: ['op'],
      buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1, 5, 30],
      registers: [registry],
    });
  }
}
