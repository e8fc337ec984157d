import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { crc32 as zlibCrc32 } from 'node:zlib';
import fc from 'fast-check';
import { crc32, CRC32_SIMD } from '../../src/runtime/infra/crc32.js';

describe('crc32', () => {
  it('gives zlib values for any input, and chains across pieces on either side of the SIMD threshold', () => {
    fc.assert(
      // Lengths drawn evenly (fast-check's own arrays stay short), so most cross the threshold.
      fc.property(fc.nat({ max: 20_000 }), fc.nat(), fc.array(fc.nat({ max: 20_000 }), { maxLength: 4 }), fc.integer({ min: 0, max: 0xffffffff }), (length, fill, cuts, seed) => {
        const data = Buffer.alloc(length);
        for (let i = 0, x = fill; i < length; i++) data[i] = x = (x * 1103515245 + 12345) >>> 16;
        assert.equal(crc32(data), zlibCrc32(data));
        assert.equal(crc32(data, seed), zlibCrc32(data, seed));
        const at = [0, ...cuts.map((c) => c % (data.length + 1)).sort((a, b) => a - b), data.length];
        let chained = 0;
        for (let i = 1; i < at.length; i++) chained = crc32(data.subarray(at[i - 1], at[i]), chained);
        assert.equal(chained, zlibCrc32(data));
      }),
      { numRuns: 200 },
    );
  });
  it('the fast CRC is the one in use on linux x64 (the fallback to zlib is for platforms without its binary)', () => {
    assert.ok(process.platform !== 'linux' || process.arch !== 'x64' || CRC32_SIMD);
  });
  it('a 128 KiB record payload: one flipped bit changes it', () => {
    const data = Buffer.alloc(128 * 1024, 0x5a);
    const before = crc32(data);
    data[70_000] = 0x5b;
    assert.notEqual(crc32(data), before);
    assert.equal(crc32(data), zlibCrc32(data));
  });
});
