/**
 * What another mount renamed, as programs here that were under it see it: libfuse's nodes are
 * names, and the mount gives them the new ones (Vfs.moveNodes), or hides an open file's
 * (Vfs.hideReplacedOpen).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, existsSync, fstatSync, linkSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { syncWait, twoMountsSharingDirD, within, withHub } from './bridge-helpers.js';
import { stopAll, stopCleanly, tempDir } from './harness.js';

after(stopAll);

describe('bridge mode: what another mount renamed', () => {
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

  for (const where of ['in its directory', 'into another directory']) {
    it(`a program whose working directory another mount renamed ${where} goes on by relative paths under the new name; what it makes there shows on both mounts`, async () => {
      await withHub(async ({ hub }) => {
        const { a, b } = await twoMountsSharingDirD(hub);
        mkdirSync(join(a.mnt, 'd/w'));
        writeFileSync(join(a.mnt, 'd/w/f'), 'first\n');
        assert.equal(syncWait(a).code, 0);
        await within(5000, 'B has d/w/f', () => assert.ok(existsSync(join(b.mnt, 'd/w/f'))));
        const go = join(tempDir(), 'go');
        const sh = spawn('sh', ['-c', `while [ ! -e ${go} ]; do sleep 0.02; done; cat f && echo made > g && ls`], { cwd: join(b.mnt, 'd/w') });
        let out = '';
        sh.stdout.on('data', (c: Buffer) => (out += c.toString()));
        sh.stderr.on('data', (c: Buffer) => (out += c.toString()));
        const exited = new Promise<number | null>((r) => sh.on('exit', (code) => r(code)));
        const to = where === 'in its directory' ? 'd/v' : 'v';
        renameSync(join(a.mnt, 'd/w'), join(a.mnt, to));
        assert.equal(syncWait(a).code, 0);
        await within(5000, 'B shows the rename', () => assert.ok(!existsSync(join(b.mnt, 'd/w')) && existsSync(join(b.mnt, to, 'f'))));
        writeFileSync(go, '');
        assert.equal(await exited, 0, out);
        assert.equal(out, 'first\nf\ng\n');
        assert.equal(syncWait(b).code, 0);
        await within(5000, 'A has g', () => assert.equal(readFileSync(join(a.mnt, to, 'g'), 'utf8'), 'made\n'));
        assert.equal(readFileSync(join(b.mnt, to, 'g'), 'utf8'), 'made\n');
        await stopCleanly(a);
        await stopCleanly(b);
      });
    });
  }
});
