import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bytes, openCache } from './helpers.js';

describe('remote changes', () => {
  it('invalidate drops clean data and keeps dirty data', async () => {
    const { cache } = await openCache();
    await cache.putClean(1, 0, bytes(10_000, 1));
    await cache.write(1, 5_000, bytes(100, 2), 1);
    await cache.invalidate(1);
    assert.deepEqual([cache.stats().clean_bytes, cache.stats().dirty_bytes], [0, 100]);
    const r = await cache.read(1, 0, 10_000);
    assert.deepEqual(r.holes, [
      { offset: 0, length: 5_000 },
      { offset: 5_100, length: 4_900 },
    ]);
    assert.deepEqual(r.data.subarray(5_000, 5_100), bytes(100, 2));
    await cache.close();
  });

  it('putClean never overwrites data the cache holds (clean or dirty)', async () => {
    const { cache } = await openCache();
    await cache.write(1, 100, bytes(100, 1), 1);
    assert.equal(await cache.putClean(1, 0, bytes(300, 2)), 200);
    const r = await cache.read(1, 0, 300);
    assert.deepEqual(r.data.subarray(100, 200), bytes(100, 1));
    assert.deepEqual(r.data.subarray(0, 100), bytes(300, 2).subarray(0, 100));
    await cache.close();
  });

  it('data fetched before an invalidate, truncate or remove is not stored (read token)', async () => {
    const { cache } = await openCache();
    await cache.putClean(1, 0, bytes(10, 1));
    for (const change of [() => cache.invalidate(1), () => cache.truncate(1, 0), () => cache.remove(1), () => cache.invalidate(99)]) {
      const { token } = await cache.read(1, 0, 100);
      await change();
      assert.equal(await cache.putClean(1, 0, bytes(100, 3), token), 0);
    }
    const { token } = await cache.read(1, 0, 100);
    assert.equal(await cache.putClean(1, 0, bytes(100, 3), token), 100, 'a fetch after the change is stored');
    await cache.close();
  });
});
