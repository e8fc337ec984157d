import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Store } from '../../src/store/store.js';
import { applyOp } from '../../src/tree/apply.js';
import { ALLOC_UNIT_BYTES, MemoryMeta } from '../../src/tree/meta.js';
import { ROOT_INO, type Op } from '../../src/tree/ops.js';

const U = ALLOC_UNIT_BYTES;
const T = 1000;

function withFile(): MemoryMeta {
  const m = new MemoryMeta();
  m.putInode({ ino: ROOT_INO, kind: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0, nlink: 2, atimeMs: 0, mtimeMs: 0, ctimeMs: 0 });
  applyOp(m, { t: 'mknode', parent: ROOT_INO, name: 'f', ino: 2, kind: 'file', mode: 0o644, uid: 0, gid: 0, timeMs: T }, { keepOrphans: true });
  return m;
}
const write = (m: MemoryMeta, offset: number, length: number): void =>
  applyOp(m, { t: 'write', ino: 2, offset, data: Buffer.alloc(length, 1), timeMs: T }, { keepOrphans: true });

describe('MemoryMeta: allocated bytes (st_blocks)', () => {
  it('a dense file is allocated up to its size', () => {
    const m = withFile();
    write(m, 0, 10);
    assert.equal(m.allocatedBytes(2), 10);
    write(m, 10, 3 * U);
    assert.equal(m.allocatedBytes(2), 3 * U + 10);
  });

  it('a write far past the end leaves a hole that is not allocated', () => {
    const m = withFile();
    write(m, 0, 4);
    write(m, 2 ** 30, 3);
    assert.equal(m.getInode(2)?.size, 2 ** 30 + 3);
    assert.equal(m.allocatedBytes(2), 2 * U);
  });

  it('writes in any order merge into disjoint ranges; rewrites count once', () => {
    const m = withFile();
    write(m, 10 * U, U);
    write(m, 2 * U, U);
    write(m, 6 * U, U);
    assert.equal(m.allocatedBytes(2), 3 * U);
    write(m, 2 * U, 5 * U); // covers 2..7, joining the first two
    assert.equal(m.allocatedBytes(2), 6 * U);
    write(m, 0, U);
    write(m, 2 * U, U);
    assert.equal(m.allocatedBytes(2), 7 * U);
    write(m, 0, 11 * U);
    assert.equal(m.allocatedBytes(2), 11 * U);
  });

  it('truncation drops what lies past the new size; an extension adds no allocation', () => {
    const m = withFile();
    write(m, 0, 8 * U);
    const trunc: Op = { t: 'truncate', ino: 2, size: 3 * U + 1, timeMs: T };
    applyOp(m, trunc, { keepOrphans: true });
    assert.equal(m.allocatedBytes(2), 3 * U + 1);
    applyOp(m, { ...trunc, size: 2 ** 32 }, { keepOrphans: true });
    assert.equal(m.allocatedBytes(2), 4 * U);
    applyOp(m, { ...trunc, size: 0 }, { keepOrphans: true });
    assert.equal(m.allocatedBytes(2), 0);
  });

  it('a store loads its blocks into the view: a sparse file stays sparse after a restart', async () => {
    const store = Store.open(mkdtempSync(join(tmpdir(), 'aether-alloc-')));
    try {
      const ops: Op[] = [
        { t: 'mknode', parent: ROOT_INO, name: 'f', ino: 2, kind: 'file', mode: 0o644, uid: 0, gid: 0, timeMs: T },
        { t: 'write', ino: 2, offset: 0, data: Buffer.from('head'), timeMs: T },
        { t: 'write', ino: 2, offset: 2 ** 30, data: Buffer.from('END'), timeMs: T },
      ];
      await store.applyBatch(ops.map((op, i) => ({ seq: i + 1, op })));
      const mem = new MemoryMeta();
      store.loadInto(mem);
      assert.equal(mem.getInode(2)?.size, 2 ** 30 + 3);
      // The store keeps whole 64 KiB blocks: two of them, not the gigabyte between.
      assert.equal(mem.allocatedBytes(2), 2 * 64 * 1024);
    } finally {
      store.close();
    }
  });
});
