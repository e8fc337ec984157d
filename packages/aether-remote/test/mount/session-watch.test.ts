/**
 * A bridge mount killed while a thread of it waits in the kernel: the entry invalidation after
 * another mount's rename waits for a directory's lock, which a lookup to this very mount holds.
 * The process could not finish dying, and its session, and every program on the mount, hung for
 * good (FUSE.md, Limits); its watcher process ends the session (session-watch.ts).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { FUSECTL_DIR, fuseConnection } from '@aether/core/mount/session-watch';
import { sleep, syncWait, twoMountsSharingDirD, within, withHub } from './bridge-helpers.js';
import { stopAll, stopCleanly } from './harness.js';

after(stopAll);

describe('a mount that dies stuck in the kernel', () => {
  it('a bridge mount killed while its entry invalidation waits for a lock a lookup to it holds: its session is aborted, the process ends, the lookup fails', async () => {
    await withHub(async ({ hub }) => {
      const { a, b } = await twoMountsSharingDirD(hub, { AETHER_TEST_SLOW_LOOKUP: 'slow:60000' });
      mkdirSync(join(a.mnt, 'd/p/x'), { recursive: true });
      assert.equal(syncWait(a).code, 0);
      await within(5000, 'B has d/p/x', () => assert.ok(existsSync(join(b.mnt, 'd/p/x'))));
      const conn = fuseConnection(b.mnt);
      assert.ok(conn !== undefined && existsSync(join(FUSECTL_DIR, String(conn), 'abort')), 'fusectl is mounted and names the session');
      // A lookup in d/p that B's JavaScript holds: the kernel holds d/p's lock meanwhile.
      const lookup = spawn('stat', [join(b.mnt, 'd/p/slow')], { stdio: 'ignore' });
      const lookedUp = new Promise<number | null>((r) => lookup.on('exit', (code) => r(code)));
      await sleep(300);
      // B moves its node for x and a thread of it drops the kernel's entry, waiting for d/p's lock.
      renameSync(join(a.mnt, 'd/p/x'), join(a.mnt, 'd/p/y'));
      assert.equal(syncWait(a).code, 0);
      await sleep(1500);
      const exited = new Promise<void>((r) => b.proc.on('exit', () => r()));
      b.proc.kill('SIGKILL');
      try {
        const ended = await Promise.race([exited.then(() => true), sleep(10_000).then(() => false)]);
        assert.ok(ended, 'the killed mount ended within 10 s');
        assert.notEqual(await lookedUp, 0, 'the lookup fails');
      } finally {
        // Never leave the machine with a hung mount.
        if (existsSync(join(FUSECTL_DIR, String(conn), 'abort'))) writeFileSync(join(FUSECTL_DIR, String(conn), 'abort'), '1');
        lookup.kill();
      }
      await b.kill9();
      await stopCleanly(a);
    });
  });
});
