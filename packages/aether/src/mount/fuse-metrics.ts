import { Counter, Histogram, type Registry } from 'prom-client';

/**
 * FUSE operation counts and latencies, by operation. `bindingAnswers` counts the getattr requests
 * the binding answered without reaching JS (BindingAttrs): they count as operations, with no
 * latency observed.
 */
export class FuseMetrics {
  readonly ops: Counter<'op' | 'result'>;
  readonly latency: Histogram<'op'>;

  constructor(registry: Registry, bindingAnswers?: () => number) {
    let counted = bindingAnswers?.() ?? 0;
    const ops = (this.ops = new Counter({
      name: 'aether_fuse_ops_total',
      help: 'FUSE operations answered, by operation and result (ok or the errno); getattr includes those the binding answered',
      labelNames: ['op', 'result'],
      registers: [registry],
      collect() {
        if (!bindingAnswers) return;
        const now = bindingAnswers();
        if (now > counted) ops.inc({ op: 'getattr', result: 'ok' }, now - counted);
        counted = now;
      },
    }));
    if (bindingAnswers) {
      const answered = bindingAnswers();
      new Counter({
        name: 'aether_fuse_binding_answers_total',
        help: 'getattr requests the binding answered from the attributes the last change handed over, without a round trip to JS',
        registers: [registry],
        collect() {
          this.reset();
          this.inc(bindingAnswers() - answered);
        },
      });
    }
    this.latency = new Histogram({
      name: 'aether_fuse_op_duration_seconds',
      help: 'Time from a FUSE request reaching Aether to its reply, by operation (includes backpressure waits)',
      labelNames: ['op'],
      buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1, 5, 30],
      registers: [registry],
    });
  }
}
