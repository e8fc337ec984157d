/**
 * A descriptor open on a file another mount renamed is held by libfuse under the old name, a
 * kernel inode of its own: a link count changed here through the new name shows through it at
 * once, not after the kernel's attribute timeout (1 s in bridge mode).
 */
import assert from 'node:assert/strict';
import { closeSync, existsSync, fstatSync, linkSync, mkdirSync, openSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { syncWait, twoMountsSharingDirD, within, withHub } from './bridge-helpers.js';
import { stopAll, stopCleanly } from './harness.js';

after(stopAll);

describe('bridge mode: link counts through a descriptor of a file another mount renamed', () => {
  it('an unlink, a link and a rename over the new name made here: fstat through the descriptor shows each at once', async () => {
    await withHub(async ({ hub }) => {
      const { a, b } = await twoMountsSharingDirD(hub);
      const cases: { name: string; change: (at: (n: string) => string) => void; nlink: number }[] = [
        { name: 'unlink', change: (at) => unlinkSync(at('new')), nlink: 0 },
        { name: 'link', change: (at) => linkSync(at('new'), at('second')), nlink: 2 },
        {
          name: 'rename over it',
          change: (at) => {
            writeFileSync(at('other'), 'other');
            renameSync(at('other'), at('new'));
          },
          nlink: 0,
        },
      ];
      for (const c of cases) {
        const dir = join('d', c.name.replaceAll(' ', '-'));
        const onA = (n: string): string => join(a.mnt, dir, n);
        const onB = (n: string): string => join(b.mnt, dir, n);
        mkdirSync(onA(''));
        writeFileSync(onA('old'), 'content');
        assert.equal(syncWait(a).code, 0);
        await within(5000, `${c.name}: B has old`, () => assert.ok(existsSync(onB('old'))));
        const fd = openSync(onB('old'), 'r');
        try {
          // Cached by the kernel for the attribute timeout.
          assert.equal(fstatSync(fd).nlink, 1);
          renameSync(onA('old'), onA('new'));
          assert.equal(syncWait(a).code, 0);
          await within(5000, `${c.name}: B shows the rename`, () => assert.ok(!existsSync(onB('old')) && existsSync(onB('new'))));
          c.change(onB);
          assert.equal(fstatSync(fd).nlink, c.nlink, `${c.name}: fstat right after`);
        } finally {
          closeSync(fd);
        }
      }
      await stopCleanly(a);
      await stopCleanly(b);
    });
  });
});
