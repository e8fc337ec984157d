import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { CACHE_METRIC } from '../../src/runtime/cache/metrics.js';
import { bytes, openCache } from './helpers.js';

async function gauge(registry: Registry, name: string): Promise<number | undefined> {
  return (await registry.getSingleMetric(name)?.get())?.values[0]?.value;
}

describe('exact accounting', () => {
  it('overwriting the same dirty range adds nothing; partly overlapping adds only the new bytes', async () => {
    const { cache } = await openCache();
    await cache.write(1, 100, bytes(1000, 1), 1);
    assert.equal(cache.stats().dirty_bytes, 1000);
    await cache.write(1, 100, bytes(1000, 2), 2);
    assert.equal(cache.stats().dirty_bytes, 1000);
    await cache.write(1, 600, bytes(1000, 3), 3);
    assert.equal(cache.stats().dirty_bytes, 1500);
    assert.deepEqual((await cache.read(1, 600, 1000)).data, bytes(1000, 3));
    await cache.close();
  });

  it('a write over clean data moves those bytes from clean to dirty', async () => {
    const { cache } = await openCache();
    await cache.putClean(1, 0, bytes(8192, 1));
    await cache.write(1, 4000, bytes(200, 2), 1);
    assert.deepEqual([cache.stats().clean_bytes, cache.stats().dirty_bytes], [8192 - 200, 200]);
    await cache.close();
  });

  it('truncation drops clean and dirty bytes past the new size, inside a block and whole blocks', async () => {
    const { cache } = await openCache();
    await cache.putClean(1, 0, bytes(10_000, 1));
    await cache.write(1, 9_000, bytes(3_000, 2), 1);
    assert.deepEqual([cache.stats().clean_bytes, cache.stats().dirty_bytes], [9_000, 3_000]);
    await cache.truncate(1, 5_000);
    assert.deepEqual([cache.stats().clean_bytes, cache.stats().dirty_bytes], [5_000, 0]);
    assert.equal(cache.stats().entries, 2, 'blocks 0 and 1 remain (4096-byte blocks)');
    const r = await cache.read(1, 0, 6_000);
    assert.deepEqual(r.holes, [{ offset: 5_000, length: 1_000 }]);
    assert.deepEqual(r.data.subarray(0, 5_000), bytes(10_000, 1).subarray(0, 5_000));
    await cache.truncate(1, 0);
    assert.deepEqual([cache.stats().clean_bytes, cache.stats().dirty_bytes, cache.stats().entries, cache.stats().files], [0, 0, 0, 0]);
    await cache.close();
  });

  it('growing a file by truncate caches nothing new; a later write past the end is exact', async () => {
    const { cache } = await openCache();
    await cache.write(1, 0, bytes(100, 1), 1);
    await cache.truncate(1, 1_000_000);
    assert.equal(cache.stats().dirty_bytes, 100);
    await cache.write(1, 999_990, bytes(20, 2), 2);
    assert.equal(cache.stats().dirty_bytes, 120);
    await cache.close();
  });

  it('remove forgets clean and dirty data of that file only', async () => {
    const { cache } = await openCache();
    await cache.write(1, 0, bytes(5000, 1), 1);
    await cache.putClean(2, 0, bytes(3000, 2));
    await cache.remove(1);
    assert.deepEqual([cache.stats().clean_bytes, cache.stats().dirty_bytes, cache.stats().files], [3000, 0, 1]);
    await cache.close();
  });

  it('aether_cache_dirty_bytes and aether_cache_clean_bytes report the exact totals', async () => {
    const { cache, registry } = await openCache();
    await cache.write(1, 10, bytes(4100, 1), 1);
    await cache.putClean(1, 0, bytes(9000, 2));
    assert.equal(await gauge(registry, CACHE_METRIC.dirtyBytes), 4100);
    assert.equal(await gauge(registry, CACHE_METRIC.cleanBytes), 9000 - 4100);
    cache.commit(1);
    assert.equal(await gauge(registry, CACHE_METRIC.dirtyBytes), 0);
    assert.equal(await gauge(registry, CACHE_METRIC.cleanBytes), 9000);
    await cache.close();
  });
});
