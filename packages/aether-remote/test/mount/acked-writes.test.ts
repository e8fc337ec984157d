/**
 * Writes the binding acknowledges in the FUSE thread, before JS takes them (FUSE.md "Writes
 * acknowledged by the binding"). Whatever a program does after such a write must see it: a stat
 * (which the binding may answer itself), a read, an fsync and a restart. Writes that JS must
 * answer itself (O_APPEND, the `immediate` policy, the dirty quota, backpressure) never take
 * that path; errno.test.ts and backpressure.test.ts check that those still refuse and wait.
 */
import assert from 'node:assert/strict';
import { closeSync, fstatSync, fsyncSync, openSync, readFileSync, readSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { metric, startMount, stopAll, stopCleanly, withKernelCaches, type MountProcess } from './harness.js';

const ackedWrites = (m: MountProcess) => metric(m, /^aether_fuse_acked_writes_total /);

/** `n` bytes that differ from one call to the next. */
function pattern(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 7) & 0xff;
  return b;
}

describe('local mode: writes acknowledged by the binding', () => {
  after(stopAll);

  it('each write is seen at once by stat, by a read through another descriptor, after fsync and after a restart', () => withKernelCaches(async () => {
    const m = await startMount();
    const p = join(m.mnt, 'f');
    const fd = openSync(p, 'w+');
    const other = openSync(p, 'r');
    const before = await ackedWrites(m);
    const expected: Buffer[] = [];
    let size = 0;
    for (let i = 0; i < 300; i++) {
      // Sizes from 1 byte to a whole 128 KiB request, some not page-aligned.
      const chunk = pattern(i % 3 === 0 ? 131072 : 1 + ((i * 997) % 9000), i);
      assert.equal(writeSync(fd, chunk, 0, chunk.length, size), chunk.length);
      size += chunk.length;
      expected.push(chunk);
      // The binding answers this stat from the attributes it holds, unless the write dropped them.
      assert.equal(statSync(p).size, size, `stat after write ${i}`);
      assert.equal(fstatSync(other).size, size, `fstat of the other descriptor after write ${i}`);
      const back = Buffer.alloc(chunk.length);
      assert.equal(readSync(other, back, 0, chunk.length, size - chunk.length), chunk.length);
      assert.ok(back.equals(chunk), `read after write ${i} returns its bytes`);
      if (i % 50 === 49) fsyncSync(fd);
    }
    const acked = (await ackedWrites(m)) - before;
    assert.ok(acked >= 300, `the binding acknowledged the writes (${acked})`);
    closeSync(other);
    closeSync(fd);
    const all = Buffer.concat(expected);
    assert.ok(readFileSync(p).equals(all));
    await stopCleanly(m);
    const again = await startMount({ mnt: m.mnt, stateDir: m.stateDir });
    assert.ok(readFileSync(p).equals(all), 'the file is the same after a restart');
    await again.stop();
  }));

  it('writes through O_APPEND go to JS, which places them at the end', async () => {
    const m = await startMount();
    const p = join(m.mnt, 'log');
    const before = await ackedWrites(m);
    const fd = openSync(p, 'a');
    for (let i = 0; i < 20; i++) writeSync(fd, `line ${i}\n`);
    closeSync(fd);
    assert.equal(await ackedWrites(m), before, 'no O_APPEND write was acknowledged by the binding');
    assert.equal(readFileSync(p, 'utf8'), Array.from({ length: 20 }, (_, i) => `line ${i}\n`).join(''));
    await m.stop();
  });

  it('under the immediate policy every write waits for the journal in JS', async () => {
    const m = await startMount({ env: { AFS_AETHER_JOURNAL_SYNC_POLICY: 'immediate' } });
    const p = join(m.mnt, 'g');
    const fd = openSync(p, 'w');
    for (let i = 0; i < 20; i++) writeSync(fd, pattern(4096, i));
    closeSync(fd);
    assert.equal(await ackedWrites(m), 0, 'no write was acknowledged by the binding');
    assert.equal(statSync(p).size, 20 * 4096);
    await m.stop();
  });
});
