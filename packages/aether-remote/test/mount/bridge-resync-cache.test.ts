/**
 * A file whose version the view changes behind the kernel (this mount's edit lost to another
 * mount's at the hub) is read as the view has it at once, not as the kernel cached it (bridge
 * mode caches names and attributes for up to a second).
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { bridgeMount, sleep, syncWait, within, withHub } from './bridge-helpers.js';
import { stopAll, stopCleanly } from './harness.js';

after(stopAll);

describe('bridge mode: a version the hub chose otherwise than this mount showed it', () => {
  it('this mount\'s edit lost to another mount\'s: a program reading the file by name right after the acknowledgement reads the winner, not the kernel\'s cached copy', async () => {
    await withHub(async ({ hub }) => {
      const a = await bridgeMount(hub);
      const b = await bridgeMount(hub);
      writeFileSync(join(a.mnt, 'x'), 'first');
      assert.equal(syncWait(a).code, 0);
      await within(5000, 'B has x', () => assert.equal(readFileSync(join(b.mnt, 'x'), 'utf8'), 'first'));
      for (let round = 0; round < 3; round++) {
        // A's edit waits to ship while B's reaches the hub first.
        assert.equal(a.ctl(['sync', 'pause']).code, 0);
        const mine = `edited on A, round ${round}, longer than the other`;
        writeFileSync(join(a.mnt, 'x'), mine);
        const theirs = `B ${round}`;
        writeFileSync(join(b.mnt, 'x'), theirs);
        assert.equal(syncWait(b).code, 0);
        // The kernel on A caches x's attributes and pages as A wrote them.
        assert.equal(readFileSync(join(a.mnt, 'x'), 'utf8'), mine);
        assert.equal(statSync(join(a.mnt, 'x')).size, mine.length);
        assert.equal(a.ctl(['sync', 'resume']).code, 0);
        // Until the hub's answer shows (the conflict copy is listed), x is looked at again and
        // again: the kernel's attributes of it stay fresh, as a program working on it keeps them.
        const copyShown = (): boolean => readdirSync(a.mnt).some((n) => n.startsWith('x.conflict-') && statSync(join(a.mnt, n)).size === mine.length && readFileSync(join(a.mnt, n), 'utf8') === mine);
        for (let i = 0; i < 500 && !copyShown(); i++) {
          statSync(join(a.mnt, 'x'));
          await sleep(10);
        }
        assert.equal(readFileSync(join(a.mnt, 'x'), 'utf8'), theirs, `round ${round}: the winner at once`);
        assert.equal(syncWait(a).code, 0);
        assert.ok(readdirSync(a.mnt).some((n) => n.startsWith('x.conflict-') && readFileSync(join(a.mnt, n), 'utf8') === mine), 'A\'s edit is in a conflict copy');
      }
      await stopCleanly(a);
      await stopCleanly(b);
    });
  });
});
