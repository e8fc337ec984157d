/**
 * A file truncated, written and truncated again while the drain catches up: what a read returns
 * must not depend on how far the drain got. The drain takes only durable entries, so under
 * `manual` an fsync between the write and the second truncation leaves the drain able to commit
 * the first two and not the third; under the default `interval` a write followed by a truncation
 * within one interval does the same.
 */
import assert from 'node:assert/strict';
import { closeSync, fsyncSync, ftruncateSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { startMount, status, stopAll, waitDrained } from './harness.js';

describe('pending truncations and the drain', () => {
  after(stopAll);

  it('a write between two truncations reads back while only the first two are committed, and after', async () => {
    const m = await startMount({ env: { AFS_AETHER_JOURNAL_SYNC_POLICY: 'manual' } });
    const p = join(m.mnt, 'f');
    writeFileSync(p, Buffer.alloc(16384, 'O'));
    const fd0 = openSync(p, 'r+');
    fsyncSync(fd0);
    closeSync(fd0);
    await waitDrained(m);
    assert.equal(m.ctl(['sync', 'pause']).code, 0);
    const fd = openSync(p, 'r+');
    ftruncateSync(fd, 0);
    writeSync(fd, Buffer.alloc(8192, 'N'), 0, 8192, 0);
    fsyncSync(fd);
    // Not durable under `manual`: the drain stops before it.
    ftruncateSync(fd, 12288);
    closeSync(fd);
    const expected = Buffer.concat([Buffer.alloc(8192, 'N'), Buffer.alloc(4096)]);
    assert.ok(readFileSync(p).equals(expected), 'before the drain');
    const last = status(m).journal.last_seq;
    assert.equal(m.ctl(['sync', 'resume']).code, 0);
    const deadline = Date.now() + 20_000;
    while (status(m).journal.committed_seq < last - 1) {
      assert.ok(Date.now() < deadline, 'the drain commits the durable entries');
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(status(m).journal.committed_seq, last - 1, 'the second truncation is still pending');
    // The kernel may keep pages it read before the drain (same size and mtime): drop them.
    writeFileSync('/proc/sys/vm/drop_caches', '1');
    assert.ok(readFileSync(p).equals(expected), 'after the write is committed and the second truncation is not');
    assert.equal(m.ctl(['journal', 'flush']).code, 0);
    await waitDrained(m);
    writeFileSync('/proc/sys/vm/drop_caches', '1');
    assert.ok(readFileSync(p).equals(expected), 'after everything is committed');
    await m.stop();
  });
});
