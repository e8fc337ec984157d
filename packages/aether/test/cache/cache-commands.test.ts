import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { cacheClear, cacheInspect } from '../../src/mount/commands/cache.js';
import { BackpressureCoordinator } from '../../src/runtime/infra/backpressure/coordinator.js';
import { T } from '../backpressure/helpers.js';
import { bytes, openCache } from './helpers.js';

const B = 4096;

async function setup() {
  const h = await openCache();
  const backpressure = new BackpressureCoordinator({
    registry: new Registry(),
    thresholds: { ...T, cache_dirty_high_water_bytes: 10 * B, cache_dirty_low_water_bytes: 5 * B, cache_min_free_bytes: 1_000_000, cache_resume_free_bytes: 2_000_000 },
    cache: h.cache,
    clock: h.clock,
  });
  return { ...h, backpressure, ctx: { cache: h.cache, backpressure } };
}

function blockFileCount(dir: string): number {
  const root = join(dir, 'blocks');
  return readdirSync(root).reduce((n, d) => n + readdirSync(join(root, d)).length, 0);
}

describe('CACHE INSPECT', () => {
  it('reports accounting, quotas, free space and the backpressure state as plain JSON', async () => {
    const s = await setup();
    await s.cache.putClean(1, 0, bytes(3 * B, 1));
    await s.cache.write(2, 0, bytes(100, 2), 1);
    const r = await cacheInspect(s.ctx);
    assert.deepEqual(JSON.parse(JSON.stringify(r)), r, 'JSON-able');
    assert.equal(r.dirty_bytes, 100);
    assert.equal(r.clean_bytes, 3 * B);
    assert.equal(r.entries, 4);
    assert.equal(r.max_bytes, 1 << 30);
    assert.equal(r.dirty_max_bytes, 1 << 30);
    assert.equal(r.disk_free_bytes, 1e12, 'measured by statfs at inspect time');
    assert.equal(r.cache_block_reason, 'none');
    assert.equal(r.backpressure_status, 'clear');
    assert.equal(r.backpressure_source, 'none');
    s.disk.freeBytes = 10;
    const r2 = await cacheInspect(s.ctx);
    assert.equal(r2.disk_free_bytes, 10, 'inspect measures free space now');
    assert.equal(r2.cache_block_reason, 'disk_free');
    assert.equal(r2.backpressure_status, 'engaged');
    assert.equal(r2.backpressure_source, 'cache');
    s.backpressure.close();
    await s.cache.close();
  });
});

describe('CACHE CLEAR', () => {
  it('drops clean data only, reports what it freed, deletes the files, and keeps dirty data readable', async () => {
    const s = await setup();
    await s.cache.putClean(1, 0, bytes(3 * B, 1));
    await s.cache.putClean(2, 0, bytes(B, 2));
    await s.cache.write(2, 10, bytes(100, 3), 1);
    // Block files are written behind; writing the index puts every held byte on disk first.
    await s.cache.flushIndex();
    assert.equal(blockFileCount(s.dir), 4);
    const r = await cacheClear(s.ctx);
    assert.equal(r.freed_clean_bytes, 4 * B - 100);
    assert.equal(r.freed_blocks, 3, 'the mixed block stays for its dirty bytes');
    assert.equal(r.clean_bytes, 0);
    assert.equal(r.dirty_bytes, 100);
    assert.equal(blockFileCount(s.dir), 1);
    const read = await s.cache.read(2, 0, B);
    assert.deepEqual(read.data.subarray(10, 110), bytes(100, 3));
    assert.deepEqual(read.holes, [
      { offset: 0, length: 10 },
      { offset: 110, length: B - 110 },
    ]);
    s.backpressure.close();
    await s.cache.close();
  });

  it('re-measures free space and re-evaluates backpressure', async () => {
    const s = await setup();
    await s.cache.putClean(1, 0, bytes(B, 1));
    s.disk.freeBytes = 10;
    await s.cache.refreshDiskFree();
    assert.equal(s.backpressure.gate.isOpen, false);
    s.disk.freeBytes = 3_000_000;
    const r = await cacheClear(s.ctx);
    assert.equal(r.backpressure_status, 'clear');
    assert.equal(r.cache_block_reason, 'none');
    assert.equal(s.backpressure.gate.isOpen, true);
    s.backpressure.close();
    await s.cache.close();
  });

  it('never waits on the backpressure gate, and neither do reads', async () => {
    const s = await setup();
    await s.cache.write(1, 0, bytes(10 * B, 1), 1);
    assert.equal(s.backpressure.gate.isOpen, false);
    let admitted = false;
    const writer = s.backpressure.gate.admit().then(() => (admitted = true));
    assert.equal((await s.cache.read(1, 0, 10 * B)).holes.length, 0);
    assert.equal((await cacheInspect(s.ctx)).cache_block_reason, 'dirty_bytes');
    assert.equal((await cacheClear(s.ctx)).dirty_bytes, 10 * B, 'CACHE CLEAR does not touch dirty data');
    assert.equal(admitted, false);
    s.cache.commit(1);
    await writer;
    assert.equal(admitted, true);
    s.backpressure.close();
    await s.cache.close();
  });
});
