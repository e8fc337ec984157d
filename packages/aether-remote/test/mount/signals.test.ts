// The FUSE threads take no signals (FUSE.md, the patch's "signals" hunk): libfuse cancels its
// workers when the session ends, and one cancelled inside libuv's signal handler kept libuv's
// signal lock, after which the mount hung at its next process.on/off of a signal.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { bin, startMount, stopAll, tempDir } from './harness.js';

after(stopAll);

/** The threads of `pid` blocked reading /dev/fuse (libfuse's workers), with their blocked-signal masks. */
function fuseThreads(pid: number): { tid: string; blocked: bigint }[] {
  const out: { tid: string; blocked: bigint }[] = [];
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      if (readFileSync(`/proc/${pid}/task/${tid}/wchan`, 'utf8') !== 'fuse_dev_do_read') continue;
      const mask = /^SigBlk:\s*([0-9a-f]+)$/m.exec(readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8'))?.[1];
      out.push({ tid, blocked: BigInt(`0x${mask}`) });
    } catch {
      // The thread ended meanwhile.
    }
  }
  return out;
}

describe('signals and the FUSE threads', () => {
  it('the threads serving /dev/fuse block every signal the process handles', async () => {
    const m = await startMount();
    writeFileSync(join(m.mnt, 'f'), 'x');
    // The kernel's follow-up requests (the release after the write) may keep every thread busy for a moment.
    let threads = fuseThreads(m.proc.pid!);
    for (let i = 0; i < 100 && threads.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 20));
      threads = fuseThreads(m.proc.pid!);
    }
    assert.ok(threads.length > 0, 'a thread waits on /dev/fuse');
    for (const { tid, blocked } of threads) {
      for (const sig of ['SIGCHLD', 'SIGTERM', 'SIGINT', 'SIGHUP', 'SIGUSR1', 'SIGPIPE'] as const) {
        const bit = 1n << BigInt(constants.signals[sig] - 1);
        assert.ok((blocked & bit) !== 0n, `thread ${tid} takes ${sig} (SigBlk ${blocked.toString(16)})`);
      }
    }
    assert.equal(await m.stop(), 0);
  });

  it('a mount whose log reader has gone (a closed stderr pipe) keeps serving, and SIGTERM still unmounts it', async () => {
    const dir = tempDir();
    const mnt = join(dir, 'mnt');
    mkdirSync(mnt);
    const p = spawn(process.execPath, [bin, 'mount', mnt, '--state-dir', join(dir, 'state')], { env: { ...process.env, AFS_AETHER_METRICS_LISTEN: 'off' }, stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((resolve) => p.once('close', resolve));
    const mounted = (): boolean => spawnSync('mountpoint', ['-q', mnt]).status === 0;
    for (let i = 0; i < 300 && !mounted(); i++) await new Promise((r) => setTimeout(r, 100));
    assert.ok(mounted(), 'mounted');
    p.stdout.destroy();
    p.stderr.destroy();
    // Each makes the mount log a line to the closed pipe (it died at the first, its mount point left dead).
    for (let i = 0; i < 3; i++) {
      p.kill('SIGHUP');
      await new Promise((r) => setTimeout(r, 300));
    }
    writeFileSync(join(mnt, 'f'), 'still serving');
    assert.equal(readFileSync(join(mnt, 'f'), 'utf8'), 'still serving');
    p.kill('SIGTERM');
    assert.equal(await exited, 0);
    assert.equal(mounted(), false);
  });

  it('a SIGHUP while a first bridge start waits for its hub ends the process, as a closed terminal always did', async () => {
    const dir = tempDir();
    const mnt = join(dir, 'mnt');
    mkdirSync(mnt);
    const p = spawn(process.execPath, [bin, 'mount', mnt, '--state-dir', join(dir, 'state'), '--bridge', 'ws://127.0.0.1:9'], {
      env: { ...process.env, AFS_AETHER_METRICS_LISTEN: 'off', AFS_AETHER_BRIDGE_TOKEN: 't' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    p.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const exited = new Promise<NodeJS.Signals | null>((resolve) => p.once('exit', (_code, sig) => resolve(sig)));
    for (let i = 0; i < 200 && !err.includes('waiting for'); i++) await new Promise((r) => setTimeout(r, 50));
    assert.match(err, /first start, waiting for ws:\/\/127\.0\.0\.1:9/);
    p.kill('SIGHUP');
    assert.equal(await exited, 'SIGHUP');
  });

  for (const signal of ['SIGTERM', 'SIGHUP'] as const) {
    it(`a ${signal} the moment the mount point appears (the start not yet finished) ${signal === 'SIGTERM' ? 'unmounts cleanly' : 'reloads'}, never leaving a dead mount point`, async () => {
      const dir = tempDir();
      const mnt = join(dir, 'mnt');
      mkdirSync(mnt);
      const p = spawn(process.execPath, [bin, 'mount', mnt, '--state-dir', join(dir, 'state')], { env: { ...process.env, AFS_AETHER_METRICS_LISTEN: 'off', JOURNAL_STREAM: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      p.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
      p.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
      const exited = new Promise<number | null>((resolve) => p.once('close', resolve));
      // The kernel lists the mount before the start has finished (the readahead, the banner).
      const listed = (): boolean => readFileSync('/proc/self/mountinfo', 'utf8').includes(` ${mnt} `);
      for (let i = 0; i < 30_000 && !listed(); i++) await new Promise((r) => setTimeout(r, 1));
      assert.ok(listed(), 'mounted');
      const early = !out.includes('aether: mounted');
      p.kill(signal);
      if (signal === 'SIGTERM') {
        assert.equal(await exited, 0, err);
        assert.match(out, /aether: unmounted/);
        if (early) assert.match(err, /Z aether: SIGTERM: stopping once the mount has started\n/);
      } else {
        for (let i = 0; i < 100 && !/SIGHUP: configuration reloaded/.test(err); i++) await new Promise((r) => setTimeout(r, 50));
        assert.match(err, /SIGHUP: configuration reloaded/);
        writeFileSync(join(mnt, 'f'), 'serving');
        assert.equal(readFileSync(join(mnt, 'f'), 'utf8'), 'serving');
        p.kill('SIGTERM');
        assert.equal(await exited, 0, err);
      }
      assert.equal(listed(), false, 'nothing left mounted');
    });
  }
});
