import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { reasons, setup } from './helpers.js';

describe('age trigger by timer', () => {
  it('engages when the oldest pending entry reaches max age with no new input at all', () => {
    const s = setup();
    s.journal.set({ pendingBytes: 1, pendingEntries: 1, oldestPendingTimestampMs: s.clock.now() });
    const callsBefore = s.journal.pendingCalls;
    s.clock.advance(29_999);
    assert.equal(s.coordinator.gate.isOpen, true);
    assert.equal(s.journal.pendingCalls, callsBefore, 'no evaluation before the deadline');
    s.clock.advance(1);
    assert.equal(s.coordinator.gate.isOpen, false, 'engaged by the timer alone');
    assert.deepEqual(reasons(s).journal, ['age']);
    assert.equal(s.clock.pendingTimers, 0, 'no timer while age is already engaged');
  });

  it('moves the deadline when the oldest entry changes (a commit), and drops it when nothing is pending', () => {
    const s = setup();
    const t0 = s.clock.now();
    s.journal.set({ pendingBytes: 1, pendingEntries: 1, oldestPendingTimestampMs: t0 });
    s.clock.advance(20_000);
    s.journal.set({ oldestPendingTimestampMs: t0 + 15_000 });
    s.clock.advance(10_000);
    assert.equal(s.coordinator.gate.isOpen, true, 'the old deadline (t0 + 30 s) no longer applies');
    s.clock.advance(15_000);
    assert.equal(s.coordinator.gate.isOpen, false, 'the new deadline (t0 + 45 s)');
    s.journal.set({ pendingBytes: 0, pendingEntries: 0, oldestPendingTimestampMs: null });
    assert.equal(s.coordinator.gate.isOpen, true);
    assert.equal(s.clock.pendingTimers, 0);
  });

  it('clears on the commit that brings the oldest age under the clear age', () => {
    const s = setup();
    s.journal.set({ pendingBytes: 1, pendingEntries: 1, oldestPendingTimestampMs: s.clock.now() });
    s.clock.advance(40_000);
    assert.deepEqual(reasons(s).journal, ['age']);
    s.journal.set({ oldestPendingTimestampMs: s.clock.now() - 10_000 });
    assert.deepEqual(reasons(s).journal, []);
    s.clock.advance(20_000);
    assert.deepEqual(reasons(s).journal, ['age'], 're-armed: that entry reaches max age 20 s later');
  });

  it('while engaged by bytes, the age reason still joins on time', () => {
    const s = setup();
    s.journal.set({ pendingBytes: 100, pendingEntries: 1, oldestPendingTimestampMs: s.clock.now() });
    assert.deepEqual(reasons(s).journal, ['bytes']);
    s.clock.advance(30_000);
    assert.deepEqual(reasons(s).journal, ['bytes', 'age']);
  });

  it('close() cancels the timer', () => {
    const s = setup();
    s.journal.set({ pendingBytes: 1, pendingEntries: 1, oldestPendingTimestampMs: s.clock.now() });
    assert.equal(s.clock.pendingTimers, 1);
    s.coordinator.close();
    assert.equal(s.clock.pendingTimers, 0);
    assert.equal(s.journal.listenerCount, 0);
  });
});
