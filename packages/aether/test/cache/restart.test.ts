import assert from 'node:assert/strict';
import { existsSync, openSync, readdirSync, readFileSync, writeFileSync, writeSync, closeSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { CACHE_METRIC } from '../../src/runtime/cache/metrics.js';
import { ManualClock } from '../../src/runtime/infra/clock.js';
import { bytes, counter, openCache, type Harness } from './helpers.js';

const B = 4096;

/** Every block file under the cache folder. */
function blockFiles(dir: string): string[] {
  const root = join(dir, 'blocks');
  return readdirSync(root).flatMap((sub) => readdirSync(join(root, sub)).map((n) => join(root, sub, n)));
}

function fileOf(dir: string, fileId: number, index: number): string {
  const hit = blockFiles(dir).find((p) => p.split('/').pop()?.startsWith(`${fileId}-${index}-`));
  if (!hit) throw new Error(`no block file for ${fileId}/${index}`);
  return hit;
}

describe('restart', () => {
  it('clean data (fetched or committed) is still cached after a clean restart', async () => {
    const a = await openCache();
    await a.cache.putClean(1, 0, bytes(10_000, 1));
    await a.cache.write(2, 5_000_000_000, bytes(3_000, 2), 1);
    a.cache.commit(1);
    await a.cache.close();
    const b = await openCache({ dir: a.dir });
    assert.equal(b.cache.stats().clean_bytes, 13_000);
    assert.equal(b.cache.stats().dirty_bytes, 0);
    const r1 = await b.cache.read(1, 0, 10_000);
    assert.deepEqual(r1.holes, []);
    assert.deepEqual(r1.data, bytes(10_000, 1));
    const r2 = await b.cache.read(2, 5_000_000_000, 3_000);
    assert.deepEqual(r2.holes, []);
    assert.deepEqual(r2.data, bytes(3_000, 2));
    assert.equal(await counter(b.registry, CACHE_METRIC.verifyFailuresTotal), 0);
    await b.cache.close();
  });

  it('dirty data is not kept by the cache: it comes back by replaying the journal', async () => {
    const a = await openCache();
    await a.cache.putClean(1, 0, bytes(B, 1));
    await a.cache.write(1, 100, bytes(50, 2), 7);
    await a.cache.close();
    const b = await openCache({ dir: a.dir });
    assert.equal(b.cache.stats().dirty_bytes, 0);
    assert.deepEqual((await b.cache.read(1, 0, B)).holes, [{ offset: 100, length: 50 }], 'the clean bytes around the dirty ones stay');
    assert.equal(b.cache.stats().clean_bytes, B - 50);
    await b.cache.write(1, 100, bytes(50, 2), 7, { replay: true });
    assert.equal(b.cache.stats().dirty_bytes, 50);
    assert.deepEqual((await b.cache.read(1, 100, 50)).data, bytes(50, 2));
    await b.cache.close();
  });

  it('keeps the LRU order across a restart', async () => {
    const a = await openCache({ limits: { max_bytes: 3 * B, dirty_max_bytes: 1 << 30 } });
    for (const f of [1, 2, 3]) await a.cache.putClean(f, 0, bytes(B, f));
    await a.cache.read(1, 0, 1);
    await a.cache.close();
    const b = await openCache({ dir: a.dir, limits: { max_bytes: 3 * B, dirty_max_bytes: 1 << 30 } });
    await b.cache.putClean(4, 0, bytes(B, 4));
    assert.equal((await b.cache.read(2, 0, B)).holes.length, 1, 'file 2 was the least recently used');
    assert.equal((await b.cache.read(1, 0, B)).holes.length, 0);
    await b.cache.close();
  });

  it('writes the index on a timer when something changed', async () => {
    const clock = new ManualClock();
    const a = await openCache({ clock, indexFlushIntervalMs: 1000 });
    await a.cache.putClean(1, 0, bytes(100, 1));
    assert.equal(existsSync(join(a.dir, 'index.json')), false);
    clock.advance(1000);
    for (let i = 0; i < 100 && !existsSync(join(a.dir, 'index.json')); i++) await new Promise((r) => setTimeout(r, 5));
    const b = await openCache({ dir: a.dir });
    assert.deepEqual((await b.cache.read(1, 0, 100)).data, bytes(100, 1));
    await a.cache.close();
    await b.cache.close();
  });
});

/**
 * A crash: `before` runs on one instance, which is then abandoned without close() (whatever it did
 * after its last index write is on disk, and the index is older than that); `after` runs on a
 * second instance opened on the same folder.
 */
async function crash(before: (a: Harness) => Promise<void>, after: (b: Harness) => Promise<void>): Promise<void> {
  const a = await openCache();
  await before(a);
  const b = await openCache({ dir: a.dir });
  try {
    await after(b);
  } finally {
    await b.cache.close();
    await a.cache.close(); // only to release the abandoned instance's files
  }
}

describe('after a crash the index never claims bytes that are not there', () => {
  it('bytes changed on disk after the index was written are dropped, not served', () =>
    crash(
      async (a) => {
        await a.cache.putClean(1, 0, bytes(2 * B, 1));
        await a.cache.flushIndex();
        const fd = openSync(fileOf(a.dir, 1, 1), 'r+');
        writeSync(fd, Buffer.from([0xff ^ (bytes(2 * B, 1)[B + 10] as number)]), 0, 1, 10);
        closeSync(fd);
      },
      async (b) => {
        const r = await b.cache.read(1, 0, 2 * B);
        assert.deepEqual(r.holes, [{ offset: B, length: B }], 'block 1 dropped, block 0 intact');
        assert.deepEqual(r.data.subarray(0, B), bytes(2 * B, 1).subarray(0, B));
        assert.equal(b.cache.stats().clean_bytes, B);
        assert.equal(await counter(b.registry, CACHE_METRIC.verifyFailuresTotal), 1);
      },
    ));

  it('a block file that disappeared is dropped', () =>
    crash(
      async (a) => {
        await a.cache.putClean(1, 0, bytes(B, 1));
        await a.cache.flushIndex();
        unlinkSync(fileOf(a.dir, 1, 0));
      },
      async (b) => {
        assert.deepEqual((await b.cache.read(1, 0, B)).holes, [{ offset: 0, length: B }]);
        assert.equal(b.cache.stats().clean_bytes, 0);
      },
    ));

  it('a dirty write over clean bytes after the index was written: the old clean bytes are not served', () =>
    crash(
      async (a) => {
        await a.cache.putClean(1, 0, bytes(B, 1));
        await a.cache.flushIndex();
        await a.cache.write(1, 0, bytes(10, 2), 1);
      },
      async (b) => assert.deepEqual((await b.cache.read(1, 0, B)).holes, [{ offset: 0, length: B }]),
    ));

  it('a truncate after the index was written is not undone', () =>
    crash(
      async (a) => {
        await a.cache.putClean(1, 0, bytes(2 * B, 1));
        await a.cache.flushIndex();
        await a.cache.truncate(1, B + 100);
      },
      async (b) => {
        const r = await b.cache.read(1, 0, 2 * B);
        assert.equal(r.holes.length, 1);
        assert.ok((r.holes[0]?.offset ?? Infinity) <= B + 100, 'nothing past the truncation point comes back');
      },
    ));

  it('an invalidate after the index was written is not undone, even in a block with dirty bytes', () =>
    crash(
      async (a) => {
        await a.cache.putClean(1, 0, bytes(B / 2, 1));
        await a.cache.flushIndex();
        await a.cache.write(1, B / 2, bytes(100, 2), 1);
        await a.cache.invalidate(1);
        assert.deepEqual((await a.cache.read(1, B / 2, 100)).data, bytes(100, 2), 'the dirty bytes survive the rewrite');
      },
      async (b) => assert.deepEqual((await b.cache.read(1, 0, B)).holes, [{ offset: 0, length: B }]),
    ));
});

describe('an unusable index', () => {
  it('a corrupt index means an empty cache, and the files it covered are deleted', async () => {
    const a = await openCache();
    await a.cache.putClean(1, 0, bytes(B, 1));
    await a.cache.close();
    const text = readFileSync(join(a.dir, 'index.json'), 'utf8');
    writeFileSync(join(a.dir, 'index.json'), text.replace('"blockBytes":4096', '"blockBytes":4097'));
    const b = await openCache({ dir: a.dir });
    assert.equal(b.cache.stats().clean_bytes, 0);
    assert.deepEqual(blockFiles(a.dir), []);
    await b.cache.close();
  });

  it('a cache folder written with another block size starts empty', async () => {
    const a = await openCache();
    await a.cache.putClean(1, 0, bytes(B, 1));
    await a.cache.close();
    const b = await openCache({ dir: a.dir, blockBytes: 8192 });
    assert.equal(b.cache.stats().clean_bytes, 0);
    assert.deepEqual((await b.cache.read(1, 0, B)).holes, [{ offset: 0, length: B }]);
    await b.cache.close();
  });
});
