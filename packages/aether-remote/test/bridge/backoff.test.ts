import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigStore } from '@aether/core';
import { ReconnectBackoff } from '../../src/bridge/backoff.js';
import { seededRandom } from '../seeded-random.js';

const params = (p: Partial<{ start_ms: number; max_ms: number; multiplier: number; jitter_percent: number }> = {}) => ({ start_ms: 100, max_ms: 1000, multiplier: 2, jitter_percent: 0, ...p });
const delays = (b: ReconnectBackoff, n: number) => Array.from({ length: n }, () => b.next().delayMs);

describe('reconnect backoff (seeds 003, 004; DESIGN §6)', () => {
  it('jitter 0 gives start × multiplier^n exactly, capped at max_ms', () => {
    assert.deepEqual(delays(new ReconnectBackoff(params(), seededRandom(1)), 8), [100, 200, 400, 800, 1000, 1000, 1000, 1000]);
    assert.deepEqual(delays(new ReconnectBackoff(params({ start_ms: 1000, max_ms: 30000, multiplier: 1.5 }), seededRandom(2)), 10), [1000, 1500, 2250, 3375, 5062.5, 7593.75, 11390.625, 17085.9375, 25628.90625, 30000]);
    assert.deepEqual(delays(new ReconnectBackoff(params({ multiplier: 1 })), 4), [100, 100, 100, 100]);
  });

  it('jitter 20 keeps every delay within ±20% of its base and never above max_ms, and uses the whole envelope', () => {
    const b = new ReconnectBackoff(params({ start_ms: 50, max_ms: 3000, multiplier: 2, jitter_percent: 20 }), seededRandom(42));
    const ratios: number[] = [];
    let capped = 0;
    for (let round = 0; round < 2000; round++) {
      for (let n = 0; n < 10; n++) {
        const s = b.next();
        assert.equal(s.attempt, n);
        assert.equal(s.baseMs, Math.min(3000, 50 * 2 ** n));
        assert.ok(s.delayMs <= 3000, `delay ${s.delayMs} above max_ms`);
        assert.ok(s.delayMs >= s.baseMs * 0.8 - 1e-9 && s.delayMs <= s.baseMs * 1.2 + 1e-9, `attempt ${n}: ${s.delayMs} outside ±20% of ${s.baseMs}`);
        if (s.baseMs === 3000) capped++;
        else ratios.push(s.delayMs / s.baseMs);
      }
      b.reset();
    }
    assert.ok(capped > 0);
    // Seeded: the draws reach both edges of the envelope and centre on the base.
    assert.ok(Math.min(...ratios) < 0.81 && Math.max(...ratios) > 1.19, `${Math.min(...ratios)}..${Math.max(...ratios)}`);
    const mean = ratios.reduce((x, y) => x + y, 0) / ratios.length;
    assert.ok(Math.abs(mean - 1) < 0.01, `mean ratio ${mean}`);
  });

  it('u runs over [-1, 1]: the random source at its ends gives the envelope edges, capped at max_ms', () => {
    assert.equal(new ReconnectBackoff(params({ jitter_percent: 20 }), () => 0).next().delayMs, 80);
    assert.equal(new ReconnectBackoff(params({ jitter_percent: 20 }), () => 0.5).next().delayMs, 100);
    const high = new ReconnectBackoff(params({ jitter_percent: 20, max_ms: 110 }), () => 0.999999);
    assert.equal(high.next().delayMs, 110);
    assert.equal(new ReconnectBackoff(params({ jitter_percent: 100 }), () => 0).next().delayMs, 0);
  });

  it('reset starts again at attempt 0', () => {
    const b = new ReconnectBackoff(params());
    assert.deepEqual(delays(b, 3), [100, 200, 400]);
    b.reset();
    assert.equal(b.attempts, 0);
    assert.deepEqual(delays(b, 2), [100, 200]);
  });

  it('refuses parameters the configuration would refuse', () => {
    assert.throws(() => new ReconnectBackoff(params({ start_ms: 0 })), RangeError);
    assert.throws(() => new ReconnectBackoff(params({ max_ms: 50 })), RangeError);
    assert.throws(() => new ReconnectBackoff(params({ multiplier: 0.5 })), RangeError);
    assert.throws(() => new ReconnectBackoff(params({ jitter_percent: 101 })), RangeError);
  });

  it('a config reload applies from the next attempt and keeps the attempt counter', () => {
    const cwd = mkdtempSync(join(tmpdir(), 'aether-backoff-'));
    const file = join(cwd, 'aether.toml');
    writeFileSync(file, '[bridge.reconnect_backoff]\nstart_ms = 100\nmax_ms = 10000\nmultiplier = 2\njitter_percent = 0\n');
    const config = new ConfigStore({ cwd, env: {} });
    const b = ReconnectBackoff.fromConfig(config, seededRandom(7));
    assert.deepEqual(delays(b, 2), [100, 200]);
    writeFileSync(file, '[bridge.reconnect_backoff]\nstart_ms = 10\nmax_ms = 500\nmultiplier = 3\njitter_percent = 0\n');
    const r = config.reload();
    assert.ok(r.ok && r.changed.includes('bridge.reconnect_backoff'), JSON.stringify(r));
    // Attempts 2, 3, 4 with the new values: 10×3², 10×3³, then capped at 500.
    assert.deepEqual(delays(b, 3), [90, 270, 500]);
    b.close();
    writeFileSync(file, '[bridge.reconnect_backoff]\nstart_ms = 1\nmax_ms = 1\nmultiplier = 1\njitter_percent = 0\n');
    assert.ok(config.reload().ok);
    b.reset();
    assert.equal(b.next().delayMs, 10, 'after close() the backoff no longer follows the configuration');
  });
});
