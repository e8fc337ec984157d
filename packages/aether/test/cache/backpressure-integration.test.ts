import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { BackpressureCoordinator } from '../../src/runtime/infra/backpressure/coordinator.js';
import { T } from '../backpressure/helpers.js';
import { bytes, openCache } from './helpers.js';

describe('cache dirty bytes drive backpressure, always current', () => {
  it('the write path (gate, reserve, write) engages at high-water and releases waiting writers in order on commit', async () => {
    const h = await openCache();
    const bp = new BackpressureCoordinator({
      registry: new Registry(),
      thresholds: { ...T, cache_dirty_high_water_bytes: 1000, cache_dirty_low_water_bytes: 400 },
      cache: h.cache,
      clock: h.clock,
    });
    let seq = 0;
    const done: number[] = [];
    // Writers pass the gate in arrival order; writes to different files then finish in any order.
    const admitted: number[] = [];
    const writeOne = async (fileId: number, offset: number, length: number) => {
      if (!bp.gate.isOpen) await bp.gate.admit();
      admitted.push(fileId);
      const reservation = h.cache.reserveDirty(fileId, offset, length);
      const mySeq = ++seq; // the journal append would assign this
      await h.cache.write(fileId, offset, bytes(length, mySeq), mySeq, { reservation });
      done.push(fileId);
    };
    await writeOne(1, 0, 600);
    await writeOne(2, 0, 400);
    assert.equal(bp.gate.isOpen, false, 'no inspect needed: the write itself re-evaluated');
    const held = [writeOne(3, 0, 10), writeOne(4, 0, 10), writeOne(5, 0, 10)];
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(done, [1, 2]);
    h.cache.commit(1);
    assert.equal(bp.gate.isOpen, true, '400 dirty bytes left: at low-water');
    await Promise.all(held);
    assert.deepEqual(admitted, [1, 2, 3, 4, 5]);
    assert.deepEqual(done.slice(0, 2), [1, 2]);
    assert.deepEqual([...done].sort(), [1, 2, 3, 4, 5]);
    bp.close();
    await h.cache.close();
  });
});
