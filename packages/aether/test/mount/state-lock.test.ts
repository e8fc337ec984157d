import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { running } from '../../src/mount/state-lock.js';

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
