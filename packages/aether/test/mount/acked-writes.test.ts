import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ACKED_WRITES_MAX, AckedWriteWindow, type AckedWriteConditions } from '../../src/mount/acked-writes.js';
import { BackpressureCoordinator } from '../../src/runtime/infra/backpressure/index.js';
import { Registry } from 'prom-client';

const MiB = 1024 * 1024;

function fakeBinding() {
  const windows: number[] = [];
  let drains = 0;
  return {
    windows,
    drains: () => drains,
    binding: { setWindow: (b: number) => void windows.push(b), drain: () => void drains++, total: () => 0 },
  };
}

function conditions(over: Partial<{ stopped: boolean; policy: 'interval' | 'manual' | 'immediate'; failed: boolean; bytes: number; entries: number; dirty: number }> = {}) {
  const c = { stopped: false, policy: 'interval' as 'interval' | 'manual' | 'immediate', failed: false, bytes: Infinity, entries: Infinity, dirty: 64 * MiB, ...over };
  const port: AckedWriteConditions = {
    get stopped() {
      return c.stopped;
    },
    policy: () => c.policy,
    journalFailed: () => c.failed,
    room: () => ({ bytes: c.bytes, entries: c.entries }),
    dirtyRoom: () => c.dirty,
  };
  return { c, port };
}

describe('AckedWriteWindow', () => {
  it('opens only while nothing could refuse or hold a whole window, and closes as soon as something could', () => {
    const b = fakeBinding();
    const { c, port } = conditions();
    const w = new AckedWriteWindow(b.binding, port, 4 * MiB);
    w.refresh();
    assert.deepEqual(b.windows, [4 * MiB]);
    const closesOn: [string, () => void, () => void][] = [
      ['immediate policy', () => (c.policy = 'immediate'), () => (c.policy = 'interval')],
      ['journal failed', () => (c.failed = true), () => (c.failed = false)],
      ['writes stopping', () => (c.stopped = true), () => (c.stopped = false)],
      ['too little room below a high-water mark', () => (c.bytes = 4 * MiB - 1), () => (c.bytes = Infinity)],
      ['too few entries below the high-water mark', () => (c.entries = ACKED_WRITES_MAX - 1), () => (c.entries = Infinity)],
      ['too little room under the dirty quota', () => (c.dirty = 4 * MiB - 1), () => (c.dirty = 64 * MiB)],
    ];
    for (const [what, set, reset] of closesOn) {
      b.windows.length = 0;
      set();
      w.refresh();
      assert.deepEqual(b.windows, [0], `closed on ${what}`);
      assert.equal(w.isOpen, false);
      w.refresh();
      assert.deepEqual(b.windows, [0], 'told once');
      reset();
      w.refresh();
      assert.deepEqual(b.windows, [0, 4 * MiB], `open again once ${what} is over`);
    }
    c.policy = 'manual';
    b.windows.length = 0;
    w.refresh();
    assert.deepEqual(b.windows, [], 'manual keeps it open');
  });

  it('close hands every waiting write to JS and never opens again', () => {
    const b = fakeBinding();
    const w = new AckedWriteWindow(b.binding, conditions().port, MiB);
    w.refresh();
    w.close();
    assert.equal(b.drains(), 1);
    assert.equal(b.windows.at(-1), 0);
    w.refresh();
    assert.equal(b.windows.at(-1), 0);
    assert.equal(w.isOpen, false);
  });

  it('a window of 0 bytes never opens', () => {
    const b = fakeBinding();
    const w = new AckedWriteWindow(b.binding, conditions().port, 0);
    w.refresh();
    assert.deepEqual(b.windows, []);
  });
});

describe('BackpressureCoordinator.room', () => {
  const thresholds = {
    journal_high_water_bytes: 10 * MiB,
    journal_low_water_bytes: 5 * MiB,
    journal_high_water_entries: 1000,
    journal_low_water_entries: 500,
    journal_max_age_seconds: 0,
    journal_clear_age_seconds: 0,
    cache_dirty_high_water_bytes: 8 * MiB,
    cache_dirty_low_water_bytes: 4 * MiB,
    cache_min_free_bytes: 0,
    cache_resume_free_bytes: 0,
  };

  it('is the distance to the nearest high-water mark, 0 while engaged, and the gate reports each change', () => {
    let pending = { pendingBytes: 3 * MiB, pendingEntries: 100, oldestPendingTimestampMs: null as number | null };
    let dirty = 2 * MiB;
    const journalListeners: (() => void)[] = [];
    const coordinator = new BackpressureCoordinator({
      registry: new Registry(),
      thresholds,
      journal: { pending: () => pending, onPendingChange: (l: () => void) => (journalListeners.push(l), () => undefined) },
      cache: { cachePressure: () => ({ dirtyBytes: dirty, diskFreeBytes: null }), onCachePressureChange: () => () => undefined },
    });
    const changes: boolean[] = [];
    coordinator.gate.onChange((open) => changes.push(open));
    assert.deepEqual(coordinator.room(), { bytes: 6 * MiB, entries: 900 }, 'the cache mark is nearer: 8 - 2 MiB');
    dirty = 7 * MiB;
    pending = { ...pending, pendingBytes: 9 * MiB + 1 };
    coordinator.evaluate();
    assert.deepEqual(coordinator.room(), { bytes: MiB - 1, entries: 900 });
    pending = { ...pending, pendingBytes: 10 * MiB };
    for (const l of journalListeners) l();
    assert.deepEqual(coordinator.room(), { bytes: 0, entries: 0 });
    assert.deepEqual(changes, [false]);
    pending = { ...pending, pendingBytes: MiB };
    dirty = 0;
    coordinator.evaluate();
    assert.deepEqual(changes, [false, true]);
    coordinator.close();
    assert.deepEqual(changes, [false, true, false]);
  });
});
