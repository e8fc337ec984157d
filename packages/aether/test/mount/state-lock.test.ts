import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import type { AetherError } from '../../src/errors.js';
import { refuseStateDirUnder, running } from '../../src/mount/state-lock.js';

describe('the state directory lock: is its owner running?', () => {
  it('a live process is; one killed but not yet reaped (a zombie, as right after kill -9) is not; a gone one is not', async () => {
    assert.equal(running(process.pid), true);
    // The shell starts a child that exits at once, then becomes `sleep`, which never reaps it.
    const parent = spawn('sh', ['-c', 'sleep 0 & echo $!; exec sleep 5'], { stdio: ['ignore', 'pipe', 'ignore'] });
    const pid = Number(await new Promise<string>((resolve) => parent.stdout.once('data', (d: Buffer) => resolve(d.toString()))));
    for (let i = 0; i < 100 && !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z '); i++) await new Promise((r) => setTimeout(r, 10));
    assert.match(readFileSync(`/proc/${pid}/stat`, 'utf8'), /\) Z /, 'the child is a zombie');
    assert.doesNotThrow(() => process.kill(pid, 0), 'kill(pid, 0) still finds it');
    assert.equal(running(pid), false);
    parent.kill('SIGKILL');
    await new Promise((r) => parent.once('exit', r));
    assert.equal(running(parent.pid!), false);
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
