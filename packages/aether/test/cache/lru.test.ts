import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigStore } from '../../src/config/index.js';
import { CACHE_METRIC } from '../../src/runtime/cache/metrics.js';
import { bytes, counter, openCache, tempDir } from './helpers.js';

const B = 4096;
const cached = async (h: Awaited<ReturnType<typeof openCache>>, fileId: number) => (await h.cache.read(fileId, 0, B)).holes.length === 0;

describe('clean quota with LRU eviction', () => {
  it('evicts the least recently used block first; a read counts as a use', async () => {
    const h = await openCache({ limits: { max_bytes: 3 * B, dirty_max_bytes: 1 << 30 } });
    for (const f of [1, 2, 3]) await h.cache.putClean(f, 0, bytes(B, f));
    await h.cache.read(1, 0, 10);
    await h.cache.putClean(4, 0, bytes(B, 4));
    assert.equal(h.cache.stats().clean_bytes, 3 * B);
    assert.equal(await cached(h, 2), false, 'file 2 was least recently used');
    assert.equal(await cached(h, 1), true);
    assert.equal(await cached(h, 3), true);
    assert.equal(await cached(h, 4), true);
    assert.equal(await counter(h.registry, CACHE_METRIC.evictionsTotal), 1);
    assert.equal(await counter(h.registry, CACHE_METRIC.evictedBytesTotal), B);
    await h.cache.close();
  });

  it('never evicts dirty data, however far past the clean quota', async () => {
    const h = await openCache({ limits: { max_bytes: 0, dirty_max_bytes: 1 << 30 } });
    await h.cache.write(1, 0, bytes(10 * B, 1), 1);
    assert.equal(h.cache.stats().dirty_bytes, 10 * B);
    assert.deepEqual((await h.cache.read(1, 0, 10 * B)).data, bytes(10 * B, 1));
    h.cache.commit(1);
    assert.deepEqual([h.cache.stats().dirty_bytes, h.cache.stats().clean_bytes], [0, 0], 'clean quota 0 keeps nothing once committed');
    await h.cache.close();
  });

  it('a block with dirty data loses only its clean bytes to eviction', async () => {
    const h = await openCache({ limits: { max_bytes: B, dirty_max_bytes: 1 << 30 } });
    await h.cache.putClean(1, 0, bytes(B, 1));
    await h.cache.write(1, 0, bytes(100, 2), 1);
    await h.cache.putClean(2, 0, bytes(B, 3));
    const r = await h.cache.read(1, 0, B);
    assert.deepEqual(r.holes, [{ offset: 100, length: B - 100 }]);
    assert.deepEqual(r.data.subarray(0, 100), bytes(100, 2));
    assert.equal(h.cache.stats().dirty_bytes, 100);
    await h.cache.close();
  });

  it('a block in use by an operation is not evicted under it; it is evicted once released', async () => {
    const h = await openCache({ limits: { max_bytes: 2 * B, dirty_max_bytes: 1 << 30 } });
    await h.cache.putClean(1, 0, bytes(B, 1));
    await h.cache.putClean(2, 0, bytes(B, 2));
    const reading = h.cache.read(1, 0, B); // holds file 1's block from now until it resolves
    h.cache.setLimits({ max_bytes: 0, dirty_max_bytes: 1 << 30 });
    assert.equal(h.cache.stats().clean_bytes, B, 'file 2 evicted, file 1 held');
    const r = await reading;
    assert.deepEqual(r.holes, []);
    assert.deepEqual(r.data, bytes(B, 1));
    assert.equal(h.cache.stats().clean_bytes, 0, 'evicted once released');
    await h.cache.close();
  });

  it('a write in flight on a clean block keeps its bytes when eviction runs meanwhile', async () => {
    const h = await openCache({ limits: { max_bytes: 2 * B, dirty_max_bytes: 1 << 30 } });
    await h.cache.putClean(1, 0, bytes(B, 1));
    const writing = h.cache.write(1, 0, bytes(10, 2), 1);
    h.cache.setLimits({ max_bytes: 0, dirty_max_bytes: 1 << 30 });
    await writing;
    const r = await h.cache.read(1, 0, 10);
    assert.deepEqual(r.holes, []);
    assert.deepEqual(r.data, bytes(10, 2));
    assert.equal(h.cache.stats().dirty_bytes, 10);
    await h.cache.close();
  });

  it('lowering max_bytes on reload evicts at once, oldest first', async () => {
    const cwd = tempDir();
    writeFileSync(join(cwd, 'aether.toml'), `[cache]\nmax_bytes = ${4 * B}\n`);
    const config = new ConfigStore({ cwd, env: {} });
    const h = await openCache({ config, limits: undefined });
    assert.equal(h.cache.stats().max_bytes, 4 * B);
    for (const f of [1, 2, 3, 4]) await h.cache.putClean(f, 0, bytes(B, f));
    writeFileSync(join(cwd, 'aether.toml'), `[cache]\nmax_bytes = ${2 * B}\n`);
    assert.ok(config.reload().ok);
    assert.equal(h.cache.stats().clean_bytes, 2 * B);
    assert.deepEqual([await cached(h, 1), await cached(h, 2), await cached(h, 3), await cached(h, 4)], [false, false, true, true]);
    await h.cache.close();
  });
});
