import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bytes, openCache } from './helpers.js';

describe('dirty becomes clean on commit', () => {
  it('commit(upTo) cleans exactly the bytes whose last write has seq <= upTo', async () => {
    const { cache } = await openCache();
    await cache.write(1, 0, bytes(1000, 1), 1);
    await cache.write(1, 500, bytes(1000, 2), 2);
    await cache.write(2, 0, bytes(300, 3), 3);
    cache.commit(1);
    assert.deepEqual([cache.stats().dirty_bytes, cache.stats().clean_bytes], [1300, 500]);
    cache.commit(2);
    assert.deepEqual([cache.stats().dirty_bytes, cache.stats().clean_bytes], [300, 1500]);
    cache.commit(3);
    assert.deepEqual([cache.stats().dirty_bytes, cache.stats().clean_bytes], [0, 1800]);
    assert.deepEqual((await cache.read(1, 0, 1500)).data, Buffer.concat([bytes(1000, 1).subarray(0, 500), bytes(1000, 2)]));
    await cache.close();
  });

  it('a byte overwritten by a later write stays dirty until that later write commits', async () => {
    const { cache } = await openCache();
    await cache.write(1, 0, bytes(10, 1), 5);
    await cache.write(1, 0, bytes(10, 2), 9);
    cache.commit(5);
    assert.equal(cache.stats().dirty_bytes, 10);
    await cache.close();
  });

  it('a write whose seq is already committed (the commit overtook it) lands clean', async () => {
    const { cache } = await openCache();
    cache.commit(10);
    await cache.write(1, 0, bytes(100, 1), 8);
    assert.deepEqual([cache.stats().dirty_bytes, cache.stats().clean_bytes], [0, 100]);
    await cache.close();
  });

  it('a late write with a lower seq does not replace bytes dirtied by a later seq', async () => {
    const { cache } = await openCache();
    await cache.write(1, 0, bytes(100, 2), 2);
    await cache.write(1, 50, bytes(100, 1), 1);
    const r = await cache.read(1, 0, 150);
    assert.deepEqual(r.data.subarray(0, 100), bytes(100, 2));
    assert.deepEqual(r.data.subarray(100, 150), bytes(100, 1).subarray(50, 100));
    assert.equal(cache.stats().dirty_bytes, 150);
    await cache.close();
  });

  it('commit tells the backpressure listeners, once', async () => {
    const { cache } = await openCache();
    await cache.write(1, 0, bytes(100, 1), 1);
    let calls = 0;
    cache.onCachePressureChange(() => calls++);
    cache.commit(1);
    cache.commit(1);
    assert.equal(calls, 1);
    assert.equal(cache.cachePressure().dirtyBytes, 0);
    await cache.close();
  });
});
