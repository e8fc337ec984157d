import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CACHE_METRIC } from '../../src/runtime/cache/metrics.js';
import { bytes, counter, openCache } from './helpers.js';

// Many operations in flight at once, on few files and a clean quota far too small, so that
// eviction, commits and clears keep landing while writes and reads hold blocks.

describe('concurrent operations', () => {
  it('keep dirty data and exact dirty accounting while eviction, commits and clears run', async () => {
    const h = await openCache({ blockBytes: 64, limits: { max_bytes: 256, dirty_max_bytes: 1 << 30 } });
    const SPAN = 600;
    const latest = new Map<number, { seq: number; value: number }[]>();
    for (const f of [1, 2, 3]) latest.set(f, Array.from({ length: SPAN }, () => ({ seq: -1, value: 0 })));
    const pending: Promise<unknown>[] = [];
    let seq = 0;
    let committed = -1;
    let x = 12345;
    const rnd = (n: number) => {
      x = (x * 1103515245 + 12345) & 0x7fffffff;
      return x % n;
    };
    for (let i = 0; i < 400; i++) {
      const f = 1 + rnd(3);
      const offset = rnd(SPAN - 50);
      const length = 1 + rnd(50);
      const kind = rnd(10);
      if (kind < 5) {
        const s = ++seq;
        const data = bytes(length, s);
        const model = latest.get(f) as { seq: number; value: number }[];
        for (let k = 0; k < length; k++) model[offset + k] = { seq: s, value: data[k] as number };
        pending.push(h.cache.write(f, offset, data, s));
      } else if (kind < 7) {
        pending.push(h.cache.putClean(f, offset, bytes(length, 100_000 + i)));
      } else if (kind < 9) {
        pending.push(h.cache.read(f, offset, length));
      } else if (rnd(4) === 0) {
        pending.push(h.cache.clear());
      } else {
        committed = Math.max(committed, seq - rnd(5));
        h.cache.commit(committed);
      }
      if (rnd(8) === 0) await new Promise((r) => setImmediate(r));
    }
    await Promise.all(pending);
    let dirty = 0;
    for (const [f, model] of latest) {
      const r = await h.cache.read(f, 0, SPAN);
      model.forEach((b, i) => {
        if (b.seq > committed) {
          dirty++;
          assert.equal(r.data[i], b.value, `file ${f} byte ${i} (seq ${b.seq}) must hold its last write`);
        }
      });
    }
    assert.equal(h.cache.stats().dirty_bytes, dirty);
    assert.ok(h.cache.stats().clean_bytes <= 256, `clean ${h.cache.stats().clean_bytes} within the quota once all is released`);
    h.cache.commit(seq);
    assert.equal(h.cache.stats().dirty_bytes, 0);
    await h.cache.close();
    const again = await openCache({ dir: h.dir, blockBytes: 64, limits: { max_bytes: 256, dirty_max_bytes: 1 << 30 } });
    for (const f of [1, 2, 3]) await again.cache.read(f, 0, SPAN);
    assert.equal(await counter(again.registry, CACHE_METRIC.verifyFailuresTotal), 0, 'the index written at close matches the files');
    await again.cache.close();
  });
});
