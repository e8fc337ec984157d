import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import type { AetherError } from '../../src/errors.js';
import { refuseStateDirUnder, StateLock } from '../../src/mount/state-lock.js';

describe('the state directory lock', () => {
  const module = new URL('../../src/mount/state-lock.js', import.meta.url).href;
  /** A process that takes the lock of `dir` at `startAt` (ms since the epoch) and prints ok or busy (late: it started after that), holding it until killed. */
  const taker = (dir: string, startAt: number): { answer: Promise<string>; kill(): void } => {
    const script = `const { StateLock } = await import(${JSON.stringify(module)}); const late = Date.now() > ${startAt}; while (Date.now() < ${startAt}); let out; try { globalThis.held = StateLock.acquire(process.argv[1]); out = 'ok'; } catch (e) { out = e.code === 'STATE_DIR_BUSY' ? 'busy' : String(e); } console.log(late ? 'late' : out); setTimeout(() => {}, 60000);`;
    const p = spawn(process.execPath, ['--input-type=module', '-e', script, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
    const answer = new Promise<string>((resolve, reject) => {
      p.stdout.once('data', (d: Buffer) => resolve(d.toString().trim()));
      p.once('error', reject);
    });
    return { answer, kill: () => p.kill('SIGKILL') };
  };

  it('two processes taking a lock a crash left behind at the same moment: exactly one gets it, every time', async () => {
    const base = mkdtempSync(join(tmpdir(), 'aether-lock-'));
    try {
      let rounds = 0;
      for (let round = 0; round < 6; round++) {
        const dir = join(base, String(round));
        mkdirSync(dir);
        writeFileSync(join(dir, 'lock'), '999999\n'); // the pid file of an owner that is gone
        const at = Date.now() + 1000;
        const takers = [taker(dir, at), taker(dir, at)];
        const got = (await Promise.all(takers.map((t) => t.answer))).sort();
        for (const t of takers) t.kill();
        if (got.includes('late')) continue; // a process started too slowly to race
        rounds++;
        assert.deepEqual(got, ['busy', 'ok'], `round ${round}`);
      }
      assert.ok(rounds >= 3, `only ${rounds} rounds raced`);
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });

  it('a lock file this user may not write (left by root) is refused in one line naming it, not taken read-only', (t) => {
    if (process.getuid?.() !== 0 || spawnSync('su', ['--version']).status !== 0) return t.skip('needs root and su to make a file another user cannot write');
    const dir = mkdtempSync(join(tmpdir(), 'aether-lock-'));
    try {
      chmodSync(dir, 0o777);
      StateLock.acquire(dir).release(); // lock.sqlite made by root, 0644
      const script = `const { StateLock } = await import(${JSON.stringify(module)}); try { StateLock.acquire(process.argv[1]); console.log('acquired'); } catch (e) { console.log(e.code + ': ' + e.message); }`;
      const out = execFileSync('su', ['nobody', '-s', '/bin/sh', '-c', `${JSON.stringify(process.execPath)} --input-type=module -e ${JSON.stringify(script).replace(/\$/g, '\\$')} ${dir}`], { encoding: 'utf8' }).trim();
      assert.equal(out, `STATE_DIR_INVALID: state directory ${dir}: cannot take its lock: ${join(dir, 'lock.sqlite')} is not writable by this user`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('held: refused in this process too, naming the owner; released: taken again; the owner killed with -9: taken at once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'aether-lock-'));
    try {
      const lock = StateLock.acquire(dir, { dir: 'data directory', owner: 'hub' });
      assert.throws(() => StateLock.acquire(dir, { dir: 'data directory', owner: 'hub' }), (err: AetherError) => err.code === 'STATE_DIR_BUSY' && err.message === `data directory ${dir} is in use by another hub (process ${process.pid}); stop it first`);
      lock.release();
      assert.equal(existsSync(join(dir, 'lock')), false);
      StateLock.acquire(dir).release();
      const holder = spawn(process.execPath, ['--input-type=module', '-e', `const { StateLock } = await import(${JSON.stringify(module)}); globalThis.held = StateLock.acquire(process.argv[1]); console.log('held'); setTimeout(() => {}, 60000);`, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
      await new Promise((r) => holder.stdout.once('data', r));
      assert.throws(() => StateLock.acquire(dir), (err: AetherError) => err.code === 'STATE_DIR_BUSY' && err.message.includes(`(process ${holder.pid})`));
      holder.kill('SIGKILL');
      await new Promise((r) => holder.once('exit', r));
      StateLock.acquire(dir).release();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the state directory: where it may be, and making it', () => {
  it('refuses a state directory at or under the mount point, symbolic links and relative paths resolved, and nothing else', () => {
    const base = mkdtempSync(join(tmpdir(), 'aether-sd-'));
    try {
      const mp = join(base, 'mp');
      mkdirSync(mp);
      symlinkSync(mp, join(base, 'via-link'));
      for (const dir of [mp, join(mp, 'state'), join(mp, '..state'), join(mp, 'a', 'b'), join(base, 'via-link', 'state'), join(relative(process.cwd(), mp), 'x')]) {
        assert.throws(() => refuseStateDirUnder(dir, mp), (err: AetherError) => err.code === 'STATE_DIR_INVALID' && /is inside the mount point/.test(err.message), dir);
      }
      for (const dir of [base, join(base, 'state'), join(base, 'mp-state'), join(base, 'mp..')]) assert.doesNotThrow(() => refuseStateDirUnder(dir, mp), dir);
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });

  it('two processes making the same state directories at once both succeed', async () => {
    const base = mkdtempSync(join(tmpdir(), 'aether-sd-'));
    try {
      const module = new URL('../../src/mount/state-lock.js', import.meta.url).href;
      const script = `const { ensureStateDir } = await import(${JSON.stringify(module)}); let failed = 0; for (let i = 0; i < 400; i++) { try { ensureStateDir(process.argv[1] + '/' + i + '/p/q/' + process.argv[2]); } catch { failed++; } } console.log(failed);`;
      const run = (name: string): Promise<string> =>
        new Promise((resolve, reject) => {
          const p = spawn(process.execPath, ['--input-type=module', '-e', script, base, name], { stdio: ['ignore', 'pipe', 'inherit'] });
          let out = '';
          p.stdout.on('data', (d: Buffer) => (out += d.toString()));
          p.once('error', reject);
          p.once('close', () => resolve(out.trim()));
        });
      assert.deepEqual(await Promise.all([run('A'), run('B')]), ['0', '0']);
      assert.ok(statSync(join(base, '399', 'p', 'q', 'A')).isDirectory() && statSync(join(base, '399', 'p', 'q', 'B')).isDirectory());
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });
});
