import { Counter, Histogram, type Registry } from 'prom-client';
import type { SyncAnswers } from './fuse-binding.js';

/** What the binding answered without reaching JS (BindingAttrs): attributes, absent names, and chown/chmod changing nothing. */
export interface BindingAnswers {
  hits(): number;
  absent(): number;
  unchanged(): { chown: number; chmod: number };
}

const answeredIn = (b: BindingAnswers): number => {
  const u = b.unchanged();
  return b.hits() + b.absent() + u.chown + u.chmod;
};

/**
 * FUSE operation counts and latencies, by operation. The requests the binding answered without
 * reaching JS (`binding`) count as operations (getattr ok, or ENOENT for an absent name; chown and
 * chmod ok), with no latency observed.
 */
export class FuseMetrics {
  readonly ops: Counter<'op' | 'result'>;
  readonly latency: Histogram<'op'>;
  private readonly bindingSyncs: Counter<'result'>;

  constructor(registry: Registry, binding?: BindingAnswers | null) {
    let counted = binding?.hits() ?? 0;
    let countedAbsent = binding?.absent() ?? 0;
    let countedUnchanged = binding?.unchanged() ?? { chown: 0, chmod: 0 };
    const ops = (this.ops = new Counter({
      name: 'aether_fuse_ops_total',
      help: 'FUSE operations answered, by operation and result (ok or the errno); getattr, chown and chmod include those the binding answered',
      labelNames: ['op', 'result'],
      registers: [registry],
      collect() {
        if (!binding) return;
        const now = binding.hits();
        if (now > counted) ops.inc({ op: 'getattr', result: 'ok' }, now - counted);
        counted = now;
        const absent = binding.absent();
        if (absent > countedAbsent) ops.inc({ op: 'getattr', result: 'ENOENT' }, absent - countedAbsent);
        countedAbsent = absent;
        const unchanged = binding.unchanged();
        for (const op of ['chown', 'chmod'] as const) {
          if (unchanged[op] > countedUnchanged[op]) ops.inc({ op, result: 'ok' }, unchanged[op] - countedUnchanged[op]);
        }
        countedUnchanged = unchanged;
      },
    }));
    if (binding) {
      const answered = answeredIn(binding);
      new Counter({
        name: 'aether_fuse_binding_answers_total',
        help: 'Requests the binding answered without a round trip to JS: getattr from the attributes the last change handed over, or ENOENT for a name absent from a directory made by this mount; chown and chmod that change nothing (the ids or mode it has, in the millisecond of its last change)',
        registers: [registry],
        collect() {
          this.reset();
          this.inc(answeredIn(binding) - answered);
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
    this.bindingSyncs = new Counter({
      name: 'aether_fuse_binding_fsyncs_total',
      help: 'fsync and fsyncdir requests the binding answered in its FUSE thread with an fdatasync of the journal, without a round trip to JS (also counted in aether_fuse_ops_total), by result',
      labelNames: ['result'],
      registers: [registry],
    });
    this.bindingSyncs.inc({ result: 'ok' }, 0);
  }

  /** fsync(2) and fsyncdir the binding answered itself (BindingSync): operations, and latencies as far as known. */
  countBindingSyncs(a: SyncAnswers): void {
    for (const op of ['fsync', 'fsyncdir'] as const) {
      if (a[op].ok) this.ops.inc({ op, result: 'ok' }, a[op].ok);
      if (a[op].failed) this.ops.inc({ op, result: 'EIO' }, a[op].failed);
      if (a[op].ok) this.bindingSyncs.inc({ result: 'ok' }, a[op].ok);
      if (a[op].failed) this.bindingSyncs.inc({ result: 'EIO' }, a[op].failed);
    }
    for (const s of a.samples) this.latency.observe({ op: s.op }, s.seconds);
  }
}
