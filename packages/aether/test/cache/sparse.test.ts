import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { bytes, openCache } from './helpers.js';

const GiB = 1024 ** 3;

describe('sparse files and large offsets', () => {
  it('writes and reads past 4 GiB, across a block boundary, with holes reported around the data', async () => {
    const { cache } = await openCache();
    const at = 4 * GiB + 4096 * 3 - 100;
    await cache.write(1, at, bytes(300, 1), 1);
    const r = await cache.read(1, at - 50, 400);
    assert.deepEqual(r.holes, [
      { offset: at - 50, length: 50 },
      { offset: at + 300, length: 50 },
    ]);
    assert.deepEqual(r.data.subarray(50, 350), bytes(300, 1));
    assert.equal(cache.stats().dirty_bytes, 300);
    assert.equal(cache.stats().entries, 2);
    await cache.close();
  });

  it('a read into a caller\'s buffer (a FUSE request\'s, holding old bytes) leaves holes zero and reports them', async () => {
    const { cache } = await openCache();
    await cache.write(1, 100, bytes(50, 1), 1);
    const into = Buffer.alloc(400, 0xee);
    const r = await cache.read(1, 0, 300, into);
    assert.equal(r.data.buffer, into.buffer, 'read into the given buffer');
    assert.equal(r.data.length, 300);
    assert.deepEqual(r.holes, [
      { offset: 0, length: 100 },
      { offset: 150, length: 150 },
    ]);
    assert.deepEqual(into.subarray(100, 150), bytes(50, 1));
    assert.ok(into.subarray(0, 100).every((b) => b === 0) && into.subarray(150, 300).every((b) => b === 0), 'holes are zero');
    assert.ok(into.subarray(300).every((b) => b === 0xee), 'nothing past the length is touched');
    await assert.rejects(cache.read(1, 0, 500, into), RangeError);
    await cache.close();
  });

  it('offsets near 2^53 work; past it they are refused as a programming error', async () => {
    const { cache } = await openCache();
    const at = Number.MAX_SAFE_INTEGER - 10;
    await cache.write(1, at, bytes(10, 1), 1);
    assert.deepEqual((await cache.read(1, at, 10)).data, bytes(10, 1));
    await assert.rejects(cache.write(1, at, bytes(20, 1), 2), TypeError);
    await assert.rejects(cache.read(1, -1, 1), TypeError);
    await cache.close();
  });

  it('block files stay sparse: a few bytes at the end of a 1 MiB block do not allocate the block', async () => {
    const h = await openCache({ blockBytes: 1024 * 1024 });
    await h.cache.write(1, 1024 * 1024 - 10, bytes(10, 1), 1);
    await h.cache.close();
    const root = join(h.dir, 'blocks');
    const files = readdirSync(root).flatMap((d) => readdirSync(join(root, d)).map((n) => join(root, d, n)));
    assert.equal(files.length, 1);
    const st = statSync(files[0] as string);
    assert.equal(st.size, 1024 * 1024);
    assert.ok(st.blocks * 512 < 64 * 1024, `allocated ${st.blocks * 512} bytes`);
  });
});
