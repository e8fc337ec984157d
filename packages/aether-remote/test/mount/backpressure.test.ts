import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { bridgeMount, mountMetrics, mustSync, within, withHub } from './bridge-helpers.js';
import { startMount, stopAll, stopCleanly, type MountProcess } from './harness.js';

const fixture = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'test', 'mount', 'writer-fixture.mjs');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Writer {
  proc: ChildProcess;
  done: () => number;
  exited: Promise<number | null>;
}

function writer(dir: string, count: number, size: number): Writer {
  const proc = spawn(process.execPath, [fixture, dir, String(count), String(size)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let done = 0;
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => (done += d.split('\n').filter((l) => l.startsWith('ok')).length));
  return { proc, done: () => done, exited: new Promise((r) => proc.once('close', (c) => r(c))) };
}

/** Waits until `n` stays the same for `quietMs` (the writer is blocked), or fails after `limitMs`. */
async function untilStalled(n: () => number, quietMs: number, limitMs: number): Promise<number> {
  const end = Date.now() + limitMs;
  let last = n();
  let since = Date.now();
  while (Date.now() < end) {
    await sleep(100);
    if (n() !== last) {
      last = n();
      since = Date.now();
    } else if (Date.now() - since >= quietMs) return last;
  }
  throw new Error(`writer never stalled (at ${n()})`);
}

function bpStatus(m: MountProcess): { engaged: boolean; source: string; journal: { reasons: string[] }; cache: { reasons: string[] }; waiting_writers: number } {
  const r = m.ctl(['backpressure', 'status', '--json']);
  assert.equal(r.code, 0, r.err);
  return JSON.parse(r.out);
}

/** A command that must answer while writers are blocked. */
function answers(cmd: string[]): string {
  const r = spawnSync(cmd[0]!, cmd.slice(1), { encoding: 'utf8', timeout: 5000 });
  assert.equal(r.error, undefined, `${cmd.join(' ')} did not answer within 5 s`);
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

describe('backpressure end to end', () => {
  after(stopAll);

  it('entries: writes block while the drain is paused, reads and ls answer, resume lets them finish', async () => {
    const m = await startMount({ env: { AFS_AETHER_JOURNAL_HIGH_WATER_ENTRIES: '60', AFS_AETHER_JOURNAL_LOW_WATER_ENTRIES: '10' } });
    writeFileSync(join(m.mnt, 'existing.txt'), 'still readable');
    await sleep(300);
    assert.equal(m.ctl(['sync', 'pause']).code, 0);
    const w = writer(m.mnt, 200, 100);
    const stalledAt = await untilStalled(w.done, 1500, 20_000);
    assert.ok(stalledAt < 200, `writer finished all ${stalledAt} writes despite backpressure`);
    const s = bpStatus(m);
    assert.equal(s.engaged, true);
    assert.equal(s.source, 'journal');
    assert.deepEqual(s.journal.reasons, ['entries']);
    assert.ok(s.waiting_writers >= 1);
    // Reads, metadata reads and control commands never wait; nor does a directory's chmod or
    // touch, whose lock every lookup in the directory needs.
    assert.equal(answers(['cat', join(m.mnt, 'existing.txt')]), 'still readable');
    assert.ok(answers(['ls', m.mnt]).includes('existing.txt'));
    answers(['chmod', '755', m.mnt]);
    answers(['touch', '-m', '-d', '2020-01-01T00:00:00Z', m.mnt]);
    assert.ok(answers(['ls', m.mnt]).includes('existing.txt'));
    assert.match(await mountMetrics(m), /^aether_backpressure_engaged\{source="journal",reason="entries"\} 1$/m);
    assert.equal(m.ctl(['sync', 'resume']).code, 0);
    assert.equal(await w.exited, 0);
    assert.equal(w.done(), 200);
    assert.equal(readdirSync(m.mnt).filter((n) => n.startsWith('w')).length, 200);
    await sleep(500);
    assert.equal(bpStatus(m).engaged, false);
    await m.stop();
  });

  it('age: engages with no new writes once the oldest pending entry is old, and clears after resume', async () => {
    const m = await startMount({ env: { AFS_AETHER_JOURNAL_MAX_AGE_SECS: '2', AFS_AETHER_JOURNAL_CLEAR_AGE_SECS: '1' } });
    assert.equal(m.ctl(['sync', 'pause']).code, 0);
    writeFileSync(join(m.mnt, 'one'), 'x');
    assert.equal(bpStatus(m).engaged, false);
    await sleep(2600);
    const s = bpStatus(m);
    assert.equal(s.engaged, true, 'age must engage by timer alone');
    assert.deepEqual(s.journal.reasons, ['age']);
    const w = writer(m.mnt, 1, 10);
    await sleep(800);
    assert.equal(w.done(), 0, 'a write went through while age backpressure was engaged');
    assert.equal(readFileSync(join(m.mnt, 'one'), 'utf8'), 'x');
    assert.equal(m.ctl(['sync', 'resume']).code, 0);
    assert.equal(await w.exited, 0);
    assert.equal(w.done(), 1);
    assert.equal(bpStatus(m).engaged, false);
    await m.stop();
  });

  it('a writer held by backpressure can be killed (kill -9, Ctrl-C) and is told EINTR by a signal it handles; nothing of its write is made', async () => {
    const m = await startMount({ env: { AFS_AETHER_JOURNAL_MAX_AGE_SECS: '1', AFS_AETHER_JOURNAL_CLEAR_AGE_SECS: '0' } });
    assert.equal(m.ctl(['sync', 'pause']).code, 0);
    writeFileSync(join(m.mnt, 'f'), 'one\n');
    for (let i = 0; i < 50 && !bpStatus(m).engaged; i++) await sleep(100);
    assert.equal(bpStatus(m).engaged, true, 'age engaged');
    const held = (cmd: string[]): { proc: ChildProcess; exited: Promise<{ code: number | null; signal: string | null; out: string }> } => {
      const proc = spawn(cmd[0]!, cmd.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      proc.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
      return { proc, exited: new Promise((r) => proc.once('close', (code, signal) => r({ code, signal, out }))) };
    };
    const gone = async (p: Promise<unknown>, ms: number): Promise<boolean> => (await Promise.race([p.then(() => true), sleep(ms).then(() => false)])) as boolean;
    // kill -9 and SIGINT of a shell appending to the file, held at the gate.
    for (const sig of ['SIGKILL', 'SIGINT'] as const) {
      const w = held(['sh', '-c', `echo two >> '${join(m.mnt, 'f')}'`]);
      assert.equal(await gone(w.exited, 700), false, 'the writer is held');
      w.proc.kill(sig);
      assert.equal(await gone(w.exited, 3000), true, `${sig}: the writer goes within 3 s`);
    }
    // Many at once: each waits in a FUSE thread of its own (the first version tracked 64).
    const many = Array.from({ length: 72 }, (_, i) => held(['sh', '-c', `echo x >> '${join(m.mnt, `g${i}`)}'`]));
    await sleep(1500);
    for (const w of many) w.proc.kill('SIGKILL');
    assert.equal(await gone(Promise.all(many.map((w) => w.exited)), 10_000), true, 'every one of 72 held writers goes');
    // A program that handles the signal gets EINTR from write(2), and can go on.
    const py = held(['python3', '-c', `
import os, signal, errno
def alarm(*_): raise TimeoutError
signal.signal(signal.SIGALRM, alarm)
fd = os.open('${join(m.mnt, 'f')}', os.O_WRONLY | os.O_APPEND)
signal.alarm(1)
try:
    os.write(fd, b'three\\n')
    print('written')
except TimeoutError:
    print('interrupted')
`]);
    assert.equal(await gone(py.exited, 5000), true, 'the program handling SIGALRM gets out of write(2)');
    const r = await py.exited;
    assert.equal(r.out.trim(), 'interrupted', `exit ${r.code}`);
    assert.equal(readFileSync(join(m.mnt, 'f'), 'utf8'), 'one\n', 'no interrupted write was made');
    assert.equal(m.ctl(['sync', 'resume']).code, 0);
    const made = many.map((_, i) => join(m.mnt, `g${i}`)).filter((p) => existsSync(p) && readFileSync(p, 'utf8') !== '');
    assert.deepEqual(made, [], 'no killed write was made');
    writeFileSync(join(m.mnt, 'f'), 'four\n', { flag: 'a' });
    assert.equal(readFileSync(join(m.mnt, 'f'), 'utf8'), 'one\nfour\n');
    await m.stop();
  });

  it('cache dirty bytes: engages past the dirty high-water and clears below the low-water', async () => {
    const m = await startMount({
      env: { AFS_AETHER_CACHE_DIRTY_HIGH_WATER_BYTES: '200000', AFS_AETHER_CACHE_DIRTY_LOW_WATER_BYTES: '50000', AFS_AETHER_CACHE_MIN_FREE_BYTES: '0' },
    });
    assert.equal(m.ctl(['sync', 'pause']).code, 0);
    const w = writer(m.mnt, 100, 10_000);
    await untilStalled(w.done, 1500, 20_000);
    const s = bpStatus(m);
    assert.equal(s.engaged, true);
    assert.equal(s.source, 'cache');
    assert.deepEqual(s.cache.reasons, ['dirty_bytes']);
    const inspect = JSON.parse(m.ctl(['cache', 'inspect', '--json']).out) as { cache_block_reason: string; dirty_bytes: number };
    assert.equal(inspect.cache_block_reason, 'dirty_bytes');
    assert.ok(inspect.dirty_bytes >= 200000);
    assert.equal(m.ctl(['sync', 'resume']).code, 0);
    assert.equal(await w.exited, 0);
    assert.equal(w.done(), 100);
    await m.stop();
  });

  it('age, bridge mode with the hub down: writes block, status and metrics say age, reads answer, writes finish after the hub returns', async () => {
    await withHub(async (h) => {
      const m = await bridgeMount(h.hub, { AFS_AETHER_JOURNAL_MAX_AGE_SECS: '2', AFS_AETHER_JOURNAL_CLEAR_AGE_SECS: '1' });
      writeFileSync(join(m.mnt, 'existing.txt'), 'still readable');
      await mustSync(m);
      await h.kill9();
      writeFileSync(join(m.mnt, 'one'), 'x');
      assert.equal(bpStatus(m).engaged, false, 'a fresh pending entry is under the max age');
      await sleep(2600);
      const s = bpStatus(m);
      assert.equal(s.engaged, true, 'age engages by timer alone while the hub is down');
      assert.equal(s.source, 'journal');
      assert.deepEqual(s.journal.reasons, ['age']);
      assert.match(await mountMetrics(m), /^aether_backpressure_engaged\{source="journal",reason="age"\} 1$/m);
      const w = writer(m.mnt, 1, 10);
      await sleep(800);
      assert.equal(w.done(), 0, 'a write went through while age backpressure was engaged');
      assert.equal(answers(['cat', join(m.mnt, 'existing.txt')]), 'still readable');
      assert.ok(answers(['ls', m.mnt]).includes('one'));
      await h.restart();
      // The hub commits the backlog; the oldest pending age falls under the clear age and the gate opens.
      assert.equal(await w.exited, 0);
      assert.equal(w.done(), 1);
      await mustSync(m);
      await within(3000, 'backpressure clears', () => assert.equal(bpStatus(m).engaged, false));
      await stopCleanly(m);
    });
  });
});
