import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { FileCache } from '../../src/runtime/cache/cache.js';
import { BackpressureCoordinator } from '../../src/runtime/infra/backpressure/coordinator.js';
import { ManualClock } from '../../src/runtime/infra/clock.js';
import { T } from '../backpressure/helpers.js';
import { bytes, FakeDisk, openCache, tempDir } from './helpers.js';

const tick = () => new Promise<void>((r) => setImmediate(r));

describe('free space of the cache disk', () => {
  it('is measured with the real statfs', async () => {
    const cache = await FileCache.open({ dir: tempDir(), registry: new Registry(), limits: { max_bytes: 1, dirty_max_bytes: 1 }, diskFreePollMs: 0, indexFlushIntervalMs: 0 });
    const free = cache.stats().disk_free_bytes;
    assert.ok(typeof free === 'number' && free > 0, `free ${free}`);
    await cache.close();
  });

  it('is polled on a timer, and bytes written since the last measurement are subtracted', async () => {
    const clock = new ManualClock();
    const disk = new FakeDisk();
    disk.freeBytes = 1_000_000;
    const h = await openCache({ clock, disk, diskFreePollMs: 1000 });
    assert.equal(h.cache.stats().disk_free_bytes, 1_000_000);
    await h.cache.write(1, 0, bytes(4096, 1), 1);
    assert.equal(h.cache.stats().disk_free_bytes, 1_000_000 - 4096);
    disk.freeBytes = 500_000;
    const calls = disk.calls;
    clock.advance(1000);
    await tick();
    assert.equal(disk.calls, calls + 1);
    assert.equal(h.cache.stats().disk_free_bytes, 500_000);
    await h.cache.close();
  });

  it('drives the disk_free reason of the coordinator, engaging and clearing', async () => {
    const clock = new ManualClock();
    const disk = new FakeDisk();
    disk.freeBytes = 1_000_000;
    const h = await openCache({ clock, disk, diskFreePollMs: 1000 });
    const bp = new BackpressureCoordinator({ registry: new Registry(), thresholds: { ...T, cache_min_free_bytes: 100_000, cache_resume_free_bytes: 200_000 }, cache: h.cache, clock });
    disk.freeBytes = 50_000;
    clock.advance(1000);
    await tick();
    assert.deepEqual(bp.status().cache.reasons, ['disk_free']);
    disk.freeBytes = 150_000;
    clock.advance(1000);
    await tick();
    assert.deepEqual(bp.status().cache.reasons, ['disk_free'], 'inside the band');
    disk.freeBytes = 200_000;
    await h.cache.refreshDiskFree();
    assert.deepEqual(bp.status().cache.reasons, []);
    bp.close();
    await h.cache.close();
  });
});
