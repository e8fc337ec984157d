/**
 * A mount that went quiet after a burst gives memory back: V8's garbage and what the C library
 * kept of what it freed (idle-trim.ts). The quiet spell is shortened for the test.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, describe, it } from 'node:test';
import { metric, startMount, stopAll, stopCleanly } from './harness.js';

after(stopAll);

const QUIET_MS = 1500;

/** Four writers at once, 3,000 random 4 KiB writes each into a sparse file of 1 GiB, in child processes. */
async function burst(dir: string): Promise<void> {
  const script = `
    const { openSync, writeSync, closeSync, ftruncateSync } = require('node:fs');
    const fd = openSync(process.argv[1], 'w+');
    ftruncateSync(fd, 2 ** 30);
    const b = Buffer.alloc(4096, 'y');
    for (let i = 0; i < 3000; i++) writeSync(fd, b, 0, b.length, Math.floor(Math.random() * 2 ** 18) * 4096);
    closeSync(fd);`;
  await Promise.all(
    [1, 2, 3, 4].map(
      (n) =>
        new Promise<void>((resolve, reject) => {
          const p = spawn(process.execPath, ['-e', script, `${dir}/sparse${n}`], { stdio: 'inherit' });
          p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`writer ${n} exited ${code}`))));
        }),
    ),
  );
}

describe('memory of a quiet mount', () => {
  it('after a burst of writes, once quiet for the spell, the mount collects and trims once (aether_memory_trims_total), not while busy, and its heap shrinks', async () => {
    const m = await startMount({ env: { AETHER_TEST_IDLE_TRIM_MS: String(QUIET_MS) } });
    const trims = (): Promise<number> => metric(m, /^aether_memory_trims_total /);
    const heapUsed = (): Promise<number> => metric(m, /^aether_nodejs_heap_size_used_bytes /);
    // The quiet spell after the start passes first.
    await new Promise((r) => setTimeout(r, QUIET_MS * 2));
    const before = await trims();
    assert.equal(before, 1, 'one trim for the quiet spell after the start');
    const writing = burst(m.mnt);
    let heapPeak = 0;
    let busy = true;
    void writing.finally(() => (busy = false));
    while (busy) {
      heapPeak = Math.max(heapPeak, await heapUsed());
      assert.equal(await trims(), before, 'no trim while writes come');
      await new Promise((r) => setTimeout(r, 100));
    }
    await writing;
    let after = before;
    const deadline = Date.now() + 20_000;
    while (after === before && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      after = await trims();
    }
    assert.equal(after, before + 1, 'one trim once quiet');
    const trimmedBytes = await metric(m, /^aether_memory_trimmed_bytes_total /);
    const heapAfter = await heapUsed();
    assert.ok(heapAfter < heapPeak, `heap ${heapAfter} bytes after, ${heapPeak} at most during the burst`);
    process.stdout.write(`# resident memory given back: ${(trimmedBytes / 2 ** 20).toFixed(1)} MiB; heap used ${(heapPeak / 2 ** 20).toFixed(1)} MiB at most during the burst, ${(heapAfter / 2 ** 20).toFixed(1)} MiB after\n`);
    // Quiet on: no more trims.
    await new Promise((r) => setTimeout(r, QUIET_MS * 3));
    assert.equal(await trims(), after);
    await stopCleanly(m);
  });
});
