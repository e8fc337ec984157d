/**
 * What another mount renamed, as programs here that were under it see it: libfuse's nodes are
 * names, and the mount gives them the new ones (Vfs.moveNodes), or hides an open file's
 * (Vfs.hideReplacedOpen).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, fstatSync, linkSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { readOr, syncWait, twoMountsSharingDirD, within, withHub } from './bridge-helpers.js';
import { stopAll, stopCleanly, tempDir } from './harness.js';

after(stopAll);

// getcwd(3), which git needs (coreutils' pwd falls back to walking up by `..` when it fails).
const getcwd = `"${process.execPath}" -p "process.cwd()"`;

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

  // A's renames ship in one batch (its sync paused meanwhile); B has a shell in `cwd`, which must end up in `now`.
  const cases: { name: string; dirs: string[]; empty?: string[]; cwd: string; renames: [string, string][]; now: string }[] = [
    { name: 'renamed in its directory', dirs: ['d/w'], cwd: 'd/w', renames: [['d/w', 'd/v']], now: 'd/v' },
    { name: 'renamed into another directory', dirs: ['d/w'], cwd: 'd/w', renames: [['d/w', 'v']], now: 'v' },
    { name: 'swapped with another directory', dirs: ['d/p', 'd/q'], cwd: 'd/p', renames: [['d/p', 'd/t'], ['d/q', 'd/p'], ['d/t', 'd/q']], now: 'd/q' },
    { name: 'renamed inside a directory renamed in the same batch', dirs: ['d/p', 'd/p/x'], cwd: 'd/p/x', renames: [['d/p', 'd/q'], ['d/q/x', 'd/q/y']], now: 'd/q/y' },
    { name: 'renamed over an empty directory this mount had looked up', dirs: ['d/p'], empty: ['d/q'], cwd: 'd/p', renames: [['d/p', 'd/q']], now: 'd/q' },
  ];
  for (const c of cases) {
    it(`a program whose working directory another mount ${c.name} goes on under the new name: relative paths, and what it makes there shows on both mounts`, async () => {
      await withHub(async ({ hub }) => {
        const { a, b } = await twoMountsSharingDirD(hub);
        for (const d of c.dirs) {
          mkdirSync(join(a.mnt, d));
          writeFileSync(join(a.mnt, d, 'f'), `in ${d}\n`);
        }
        for (const d of c.empty ?? []) mkdirSync(join(a.mnt, d));
        assert.equal(syncWait(a).code, 0);
        await within(5000, 'B has them', () => assert.ok(c.dirs.every((d) => existsSync(join(b.mnt, d, 'f'))) && (c.empty ?? []).every((d) => existsSync(join(b.mnt, d)))));
        const go = join(tempDir(), 'go');
        const script = `while [ ! -e ${go} ]; do sleep 0.02; done; cat f && echo made > g && ls && ${getcwd}`;
        const sh = spawn('sh', ['-c', script], { cwd: join(b.mnt, c.cwd) });
        let out = '';
        sh.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
        sh.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
        const exited = new Promise<number | null>((r) => sh.on('exit', (code) => r(code)));
        try {
          assert.equal(a.ctl(['sync', 'pause']).code, 0);
          for (const [from, to] of c.renames) renameSync(join(a.mnt, from), join(a.mnt, to));
          assert.equal(a.ctl(['sync', 'resume']).code, 0);
          assert.equal(syncWait(a).code, 0);
          // By listings only: a lookup of the new name from here would itself move the kernel's entry of the directory.
          const listed = (path: string): boolean => {
            try {
              return readdirSync(join(b.mnt, dirname(path))).includes(basename(path));
            } catch {
              return false;
            }
          };
          await within(5000, 'B lists the renames', () => assert.ok(listed(c.now) && (c.renames.some(([, to]) => to === c.cwd) || !listed(c.cwd))));
          writeFileSync(go, '');
          assert.equal(await exited, 0, out);
          const inside = c.dirs.filter((d) => d !== c.cwd && d.startsWith(`${c.cwd}/`)).map((d) => d.slice(c.cwd.length + 1));
          assert.equal(out, `in ${c.cwd}\n${['f', 'g', ...inside].sort().join('\n')}\n${join(b.mnt, c.now)}\n`);
        } finally {
          // A failure must not leave the shell waiting (its pipes would keep this test file running).
          sh.kill();
        }
        assert.equal(syncWait(b).code, 0);
        await within(5000, 'A has g', () => assert.equal(readFileSync(join(a.mnt, c.now, 'g'), 'utf8'), 'made\n'));
        assert.equal(readFileSync(join(b.mnt, c.now, 'g'), 'utf8'), 'made\n');
        await stopCleanly(a);
        await stopCleanly(b);
      });
    });
  }

  it('a program whose working directory another mount renamed while a request here held the directory goes on under the new name meanwhile, and after', async () => {
    await withHub(async ({ hub }) => {
      // B's writes wait at the gate once an entry is pending for a second (its drain paused).
      const { a, b } = await twoMountsSharingDirD(hub, { AFS_AETHER_JOURNAL_MAX_AGE_SECS: '1', AFS_AETHER_JOURNAL_CLEAR_AGE_SECS: '0' });
      mkdirSync(join(a.mnt, 'd/w'));
      writeFileSync(join(a.mnt, 'd/w/f'), 'in d/w\n');
      assert.equal(syncWait(a).code, 0);
      await within(5000, 'B has d/w/f', () => assert.ok(existsSync(join(b.mnt, 'd/w/f'))));
      const go = join(tempDir(), 'go');
      const wait = (n: number): string => `while [ ! -e ${go}${n} ]; do sleep 0.02; done`;
      // Its own writes would wait at the gate meanwhile: it only makes a file.
      const sh = spawn('sh', ['-c', `${wait(1)}; cat f && : > g && ls && ${wait(2)} && cat held && ${getcwd}`], { cwd: join(b.mnt, 'd/w') });
      let out = '';
      sh.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      sh.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
      const exited = new Promise<number | null>((r) => sh.on('exit', (code) => r(code)));
      let held: ChildProcess | undefined;
      try {
        assert.equal(b.ctl(['sync', 'pause']).code, 0);
        writeFileSync(join(b.mnt, 'd/pending'), 'x');
        const gate = (): { engaged: boolean; waiting_writers: number } => JSON.parse(b.ctl(['backpressure', 'status', '--json']).out);
        await within(5000, 'B holds writers', () => assert.equal(gate().engaged, true));
        // A write in d/w held at the gate: libfuse holds the directory's node for it, so the node cannot move.
        held = spawn('sh', ['-c', 'echo held >> held'], { cwd: join(b.mnt, 'd/w') });
        const heldExited = new Promise<number | null>((r) => held!.on('exit', (code) => r(code)));
        await within(5000, 'the write waits', () => assert.equal(gate().waiting_writers, 1));
        renameSync(join(a.mnt, 'd/w'), join(a.mnt, 'v'));
        assert.equal(syncWait(a).code, 0);
        await within(5000, 'B lists the rename', () => assert.ok(readdirSync(b.mnt).includes('v') && !readdirSync(join(b.mnt, 'd')).includes('w')));
        writeFileSync(`${go}1`, '');
        await within(5000, 'the program lists its directory', () => assert.equal(out, 'in d/w\nf\ng\nheld\n'));
        assert.equal(b.ctl(['sync', 'resume']).code, 0);
        assert.equal(await heldExited, 0);
        // The node moved once the write let go: the old name is free for a new directory, and the program stays in its own.
        mkdirSync(join(a.mnt, 'd/w'));
        writeFileSync(join(a.mnt, 'd/w/new'), 'new');
        assert.equal(syncWait(a).code, 0);
        await within(5000, 'B lists the new d/w', () => assert.deepEqual(readdirSync(join(b.mnt, 'd/w')), ['new']));
        writeFileSync(`${go}2`, '');
        assert.equal(await exited, 0, out);
        assert.equal(out, `in d/w\nf\ng\nheld\nheld\n${join(b.mnt, 'v')}\n`);
      } finally {
        // A failure must not leave them waiting (their pipes would keep this test file running).
        sh.kill();
        held?.kill();
      }
      assert.equal(syncWait(b).code, 0);
      await within(5000, 'A has g and held', () => assert.deepEqual([readOr(join(a.mnt, 'v/g')), readOr(join(a.mnt, 'v/held'))], ['', 'held\n']));
      await stopCleanly(a);
      await stopCleanly(b);
    });
  });

  it('a program whose working directory another mount moved into a directory this mount never looked up, the old name then made again, never reaches the new directory of that name', async () => {
    await withHub(async ({ hub }) => {
      const { a, b } = await twoMountsSharingDirD(hub);
      mkdirSync(join(a.mnt, 'd/pd'));
      writeFileSync(join(a.mnt, 'd/pd/f'), 'old pd\n');
      assert.equal(syncWait(a).code, 0);
      await within(5000, 'B has d/pd/f', () => assert.ok(existsSync(join(b.mnt, 'd/pd/f'))));
      const go = join(tempDir(), 'go');
      const sh = spawn('sh', ['-c', `while [ ! -e ${go} ]; do sleep 0.02; done; cat f; echo from-old-pd > g`], { cwd: join(b.mnt, 'd/pd') });
      let out = '';
      sh.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      const exited = new Promise<void>((r) => sh.on('exit', () => r()));
      try {
        mkdirSync(join(a.mnt, 'd/sub'));
        renameSync(join(a.mnt, 'd/pd'), join(a.mnt, 'd/sub/pd'));
        mkdirSync(join(a.mnt, 'd/pd'));
        writeFileSync(join(a.mnt, 'd/pd/f'), 'NEW pd\n');
        assert.equal(syncWait(a).code, 0);
        await within(5000, 'B lists the new pd', () => assert.deepEqual(readdirSync(join(b.mnt, 'd')).sort(), ['pd', 'sub']));
        writeFileSync(go, '');
        await exited;
      } finally {
        sh.kill();
      }
      // A local disk goes on in sub/pd; here the directory is out of reach (ENOENT), never the new pd.
      assert.ok(!out.includes('NEW pd'), out);
      assert.equal(syncWait(b).code, 0);
      await within(5000, 'B shows A', () => assert.equal(readFileSync(join(b.mnt, 'd/pd/f'), 'utf8'), 'NEW pd\n'));
      assert.deepEqual(readdirSync(join(b.mnt, 'd/pd')), ['f']);
      assert.deepEqual(readdirSync(join(a.mnt, 'd/pd')), ['f']);
      await stopCleanly(a);
      await stopCleanly(b);
    });
  });
});
