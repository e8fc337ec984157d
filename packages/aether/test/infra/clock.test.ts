import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { systemClock, TIMER_MS_MAX } from '../../src/runtime/infra/clock.js';

describe('systemClock timers', () => {
  it('a wait longer than one Node timer holds neither fires early nor warns, and can be cleared', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on('warning', onWarning);
    let fired = 0;
    const long = systemClock.setTimeout(() => fired++, 3_000_000_000);
    long.unref?.();
    const edge = systemClock.setTimeout(() => fired++, TIMER_MS_MAX + 1);
    await new Promise((r) => setTimeout(r, 60));
    systemClock.clearTimeout(long);
    systemClock.clearTimeout(edge);
    process.off('warning', onWarning);
    assert.equal(fired, 0, 'Node would have fired both after 1 ms');
    assert.deepEqual(warnings, []);
  });

  it('short waits fire as usual and clear as usual', async () => {
    let fired = 0;
    systemClock.setTimeout(() => fired++, 5);
    const cleared = systemClock.setTimeout(() => fired++, 5);
    systemClock.clearTimeout(cleared);
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(fired, 1);
  });
});
