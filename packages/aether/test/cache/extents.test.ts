import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CLEAN, HOLE, KEEP, holePieces, notDirtyBytes, overlay, writablePieces, type Extent } from '../../src/runtime/cache/extents.js';

const e = (start: number, end: number, seq: number): Extent => ({ start, end, seq });

describe('extents', () => {
  it('overlay splits, replaces and merges, reporting exact deltas', () => {
    const base = [e(0, 10, CLEAN), e(10, 20, 5)];
    const r = overlay(base, 5, 15, () => 7);
    assert.deepEqual(r.extents, [e(0, 5, CLEAN), e(5, 15, 7), e(15, 20, 5)]);
    assert.equal(r.cleanDelta, -5, 'clean 5..10 became dirty');
    assert.equal(r.dirtyDelta, 5, 'dirty 10..15 stays dirty (new seq), 5..10 joins');
  });

  it('overlay over holes adds bytes and merges equal neighbours', () => {
    const r = overlay([e(0, 4, CLEAN), e(8, 12, CLEAN)], 0, 16, (cur) => (cur === HOLE ? CLEAN : KEEP));
    assert.deepEqual(r.extents, [e(0, 16, CLEAN)]);
    assert.equal(r.cleanDelta, 8);
  });

  it('overlay to HOLE removes bytes', () => {
    const r = overlay([e(0, 10, 3), e(10, 20, CLEAN)], 5, 20, () => HOLE);
    assert.deepEqual(r.extents, [e(0, 5, 3)]);
    assert.equal(r.dirtyDelta, -5);
    assert.equal(r.cleanDelta, -10);
  });

  it('changed pieces are reported', () => {
    const changed: number[] = [];
    overlay([e(2, 4, CLEAN)], 0, 6, (cur) => (cur === HOLE ? CLEAN : KEEP), changed);
    assert.deepEqual(changed, [0, 2, 4, 6]);
  });

  it('writable pieces skip bytes dirtied by a later write; hole pieces skip any data', () => {
    const exts = [e(0, 4, 9), e(4, 8, 2), e(8, 12, CLEAN)];
    assert.deepEqual(writablePieces(exts, 0, 16, 5), [4, 16]);
    assert.deepEqual(writablePieces(exts, 0, 16, 10), [0, 16]);
    assert.deepEqual(holePieces(exts, 0, 16), [12, 16]);
    assert.deepEqual(holePieces([e(2, 3, CLEAN)], 0, 5), [0, 2, 3, 5]);
    assert.equal(notDirtyBytes(exts, 0, 16), 8);
  });
});
