import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isAetherError } from '../../src/errors.js';
import { CACHE_METRIC } from '../../src/runtime/cache/metrics.js';
import { bytes, counter, openCache } from './helpers.js';

const enospc = (e: unknown) => isAetherError(e, 'CACHE_DIRTY_QUOTA') && e.errno === 'ENOSPC';

describe('hard dirty quota', () => {
  it('a write that would pass the quota fails with ENOSPC, changes nothing, and is counted', async () => {
    const h = await openCache({ limits: { max_bytes: 1 << 30, dirty_max_bytes: 10_000 } });
    await h.cache.write(1, 0, bytes(6_000, 1), 1);
    await h.cache.write(2, 0, bytes(4_000, 2), 2);
    assert.equal(h.cache.stats().dirty_bytes, 10_000, 'exactly at the quota is allowed');
    await assert.rejects(h.cache.write(1, 5_000, bytes(2_000, 3), 3), enospc);
    assert.equal(h.cache.stats().dirty_bytes, 10_000);
    assert.deepEqual((await h.cache.read(1, 0, 6_000)).data, bytes(6_000, 1), 'the overlapping old bytes are intact');
    assert.deepEqual((await h.cache.read(1, 6_000, 1_000)).holes, [{ offset: 6_000, length: 1_000 }], 'nothing of the refused write landed');
    assert.deepEqual((await h.cache.read(2, 0, 4_000)).data, bytes(4_000, 2));
    assert.equal(await counter(h.registry, CACHE_METRIC.dirtyQuotaRejectionsTotal), 1);
    await h.cache.close();
  });

  it('rewriting bytes that are already dirty is allowed at the quota (it adds nothing)', async () => {
    const h = await openCache({ limits: { max_bytes: 1 << 30, dirty_max_bytes: 1_000 } });
    await h.cache.write(1, 0, bytes(1_000, 1), 1);
    await h.cache.write(1, 0, bytes(1_000, 2), 2);
    assert.deepEqual((await h.cache.read(1, 0, 1_000)).data, bytes(1_000, 2));
    await assert.rejects(h.cache.write(1, 1_000, bytes(1, 3), 3), enospc);
    await h.cache.close();
  });

  it('commit makes room again', async () => {
    const h = await openCache({ limits: { max_bytes: 1 << 30, dirty_max_bytes: 1_000 } });
    await h.cache.write(1, 0, bytes(1_000, 1), 1);
    await assert.rejects(h.cache.write(1, 1_000, bytes(10, 2), 2), enospc);
    h.cache.commit(1);
    await h.cache.write(1, 1_000, bytes(10, 2), 2);
    assert.equal(h.cache.stats().dirty_bytes, 10);
    await h.cache.close();
  });

  it('a reservation holds its bytes until the write consumes it, so a racing writer cannot overtake', async () => {
    const h = await openCache({ limits: { max_bytes: 1 << 30, dirty_max_bytes: 1_000 } });
    const r = h.cache.reserveDirty(1, 0, 800);
    assert.equal(r.bytes, 800);
    assert.throws(() => h.cache.reserveDirty(2, 0, 300), enospc);
    await h.cache.write(1, 0, bytes(800, 1), 1, { reservation: r });
    assert.equal(h.cache.stats().reserved_dirty_bytes, 0);
    assert.equal(h.cache.stats().dirty_bytes, 800);
    const r2 = h.cache.reserveDirty(2, 0, 200);
    r2.release();
    r2.release();
    assert.equal(h.cache.stats().reserved_dirty_bytes, 0, 'release is idempotent');
    await h.cache.close();
  });

  it('journal replay restores acknowledged data even past the quota', async () => {
    const h = await openCache({ limits: { max_bytes: 1 << 30, dirty_max_bytes: 100 } });
    await h.cache.write(1, 0, bytes(500, 1), 1, { replay: true });
    assert.equal(h.cache.stats().dirty_bytes, 500);
    await h.cache.close();
  });

  it('quota 0 accepts no new dirty bytes', async () => {
    const h = await openCache({ limits: { max_bytes: 1 << 30, dirty_max_bytes: 0 } });
    await assert.rejects(h.cache.write(1, 0, bytes(1, 1), 1), enospc);
    await h.cache.write(1, 0, Buffer.alloc(0), 1);
    await h.cache.close();
  });
});
