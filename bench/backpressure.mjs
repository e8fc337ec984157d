// Cost of the backpressure gate on the write path when not engaged, and of one coordinator
// evaluation. Run after `npm run build`: `node bench/backpressure.mjs`. Not part of the tests.
import { performance } from 'node:perf_hooks';
import { Registry } from 'prom-client';
import { BackpressureCoordinator } from '../packages/aether/dist/src/runtime/infra/backpressure/coordinator.js';

const thresholds = {
  journal_high_water_bytes: 67108864,
  journal_low_water_bytes: 50331648,
  journal_high_water_entries: 100000,
  journal_low_water_entries: 50000,
  journal_max_age_seconds: 30,
  journal_clear_age_seconds: 10,
  cache_dirty_high_water_bytes: 67108864,
  cache_dirty_low_water_bytes: 50331648,
  cache_min_free_bytes: 536870912,
  cache_resume_free_bytes: 1073741824,
};

function source(state, method, subscribe) {
  const listeners = new Set();
  return {
    state,
    [method]: () => state,
    [subscribe]: (l) => (listeners.add(l), () => listeners.delete(l)),
    notify: () => {
      for (const l of listeners) l();
    },
  };
}

const journal = source({ pendingBytes: 1 << 20, pendingEntries: 100, oldestPendingTimestampMs: Date.now() }, 'pending', 'onPendingChange');
const cache = source({ dirtyBytes: 1 << 20, diskFreeBytes: 1e12 }, 'cachePressure', 'onCachePressureChange');
const bp = new BackpressureCoordinator({ registry: new Registry(), thresholds, journal, cache });
const gate = bp.gate;

function nsPerOp(label, n, fn) {
  for (let i = 0; i < Math.min(n, 100_000); i++) fn(i); // warm-up
  const t0 = performance.now();
  for (let i = 0; i < n; i++) fn(i);
  const ns = ((performance.now() - t0) * 1e6) / n;
  console.log(`${label.padEnd(62)} ${ns.toFixed(1).padStart(8)} ns/op  (${n.toLocaleString('en')} ops)`);
  return ns;
}

async function nsPerOpAsync(label, n, fn) {
  for (let i = 0; i < 10_000; i++) await fn(i);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await fn(i);
  const ns = ((performance.now() - t0) * 1e6) / n;
  console.log(`${label.padEnd(62)} ${ns.toFixed(1).padStart(8)} ns/op  (${n.toLocaleString('en')} ops)`);
  return ns;
}

console.log(`node ${process.version}, ${process.platform}/${process.arch}`);
console.log('gate, not engaged (per write):');
let sink = 0;
nsPerOp('  empty loop (baseline)', 50_000_000, (i) => {
  sink += i;
});
nsPerOp('  gate.isOpen check (sync fast path, no await)', 50_000_000, (i) => {
  if (gate.isOpen) sink += i;
});
await nsPerOpAsync('  async writer without any gate (baseline)', 2_000_000, async (i) => {
  sink += i;
});
await nsPerOpAsync('  async writer: if (!gate.isOpen) await gate.admit()', 2_000_000, async (i) => {
  if (!gate.isOpen) await gate.admit();
  sink += i;
});
await nsPerOpAsync('  async writer: await gate.admit() unconditionally', 2_000_000, async (i) => {
  await gate.admit();
  sink += i;
});

console.log('coordinator evaluation:');
nsPerOp('  evaluate(), inputs unchanged', 10_000_000, () => bp.evaluate());
nsPerOp('  input change notified -> evaluate(), no transition', 10_000_000, (i) => {
  cache.state.dirtyBytes = (1 << 20) + (i & 1023);
  cache.notify();
});
nsPerOp('  input change notified -> evaluate(), engage or clear each time', 2_000_000, (i) => {
  cache.state.dirtyBytes = i & 1 ? 67108864 : 0;
  cache.notify();
});
cache.state.dirtyBytes = 0;
cache.notify();
if (!bp.gate.isOpen) throw new Error('benchmark left backpressure engaged');
bp.close();
if (sink === 0) console.log('');
