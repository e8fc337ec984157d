/**
 * Issue 5: what `aether mount` does with the mount point and the state directory it is given — a
 * stale mount left by `kill -9`, a non-empty directory, a busy mount point, a state directory in use.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { bin as aetherBin, mountMustFail, mountSuite, startMount, status, stopCleanly, waitDrained, type FailedMount } from './harness.js';

function mounted(mnt: string): boolean {
  // mountinfo escapes space, tab, newline and backslash as octal.
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((line) => line.split(' ')[4]?.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))) === mnt);
}

/** A refusal is one `aether:` line naming the problem, no stack trace. */
function assertOneLine(r: FailedMount, pattern: RegExp): void {
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `expected one line on stderr, got:\n${r.stderr}`);
  assert.match(lines[0]!, /^aether: /);
  assert.match(lines[0]!, pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
}

describe('mount points and state directories', () => {
  const suite = mountSuite();
  const fresh = (): { base: string; mnt: string; stateDir: string } => {
    const base = suite.dir('aether-mntpt-');
    mkdirSync(join(base, 'mnt'));
    return { base, mnt: join(base, 'mnt'), stateDir: join(base, 'state') };
  };

  it('after kill -9 the next mount cleans the stale mount, says so, and works', async () => {
    const { mnt, stateDir } = fresh();
    const env = { AFS_AETHER_JOURNAL_SYNC_POLICY: 'immediate' };
    const m = await startMount({ mnt, stateDir, env });
    writeFileSync(join(mnt, 'before-the-kill'), 'still here');
    await m.kill9({ keepStaleMount: true });
    assert.ok(mounted(mnt), 'the dead mount must still be attached for this test');
    assert.throws(() => statSync(mnt), (err: NodeJS.ErrnoException) => err.code === 'ENOTCONN');

    const again = await startMount({ mnt, stateDir, env });
    assert.match(again.stderr(), /cleaned a stale mount left at .* by a crashed process/);
    assert.equal(readFileSync(join(mnt, 'before-the-kill'), 'utf8'), 'still here');
    writeFileSync(join(mnt, 'after-the-restart'), 'works');
    assert.equal(readFileSync(join(mnt, 'after-the-restart'), 'utf8'), 'works');
    await stopCleanly(again);
    assert.equal(mounted(mnt), false);
  });

  it('after kill -9 with the root\'s attributes still in the kernel\'s cache, the next mount cleans the stale mount at once', async () => {
    const { mnt, stateDir } = fresh();
    const m = await startMount({ mnt, stateDir });
    writeFileSync(join(mnt, 'f'), 'kept');
    // Cached for the attribute timeout (60 s in local mode): lstat of the dead mount point still answers.
    statSync(mnt);
    await m.kill9({ keepStaleMount: true });
    assert.ok(mounted(mnt), 'the dead mount must still be attached for this test');
    const again = await startMount({ mnt, stateDir });
    assert.match(again.stderr(), /cleaned a stale mount left at .* by a crashed process/);
    assert.equal(readFileSync(join(mnt, 'f'), 'utf8'), 'kept');
    await stopCleanly(again);
  });

  it('refuses a state directory inside the mount point with one line and exit code 2, creating nothing', async () => {
    const { mnt } = fresh();
    for (const stateDir of [join(mnt, '.aether'), mnt, join(mnt, 'a', 'b')]) {
      const r = await mountMustFail({ mnt, stateDir });
      assert.equal(r.code, 2, r.stderr);
      assertOneLine(r, /state directory .* is inside the mount point/);
      assert.deepEqual(readdirSync(mnt), []);
      assert.equal(mounted(mnt), false);
    }
    // One left there by an older version: the same refusal, not "not empty" (which invites deleting it).
    mkdirSync(join(mnt, '.aether'));
    const r = await mountMustFail({ mnt, stateDir: join(mnt, '.aether') });
    assertOneLine(r, /state directory .* is inside the mount point/);
  });

  it('after kill -9, on a machine where starting node takes 3 s, the stale mount is still found and cleaned', async () => {
    const { base, mnt, stateDir } = fresh();
    const m = await startMount({ mnt, stateDir });
    await m.kill9({ keepStaleMount: true });
    const slow = join(base, 'slow-start.cjs');
    writeFileSync(slow, 'const until = Date.now() + 3000; while (Date.now() < until);\n');
    // Every node process started from the mount, the mount point's probe included, starts slowly.
    const again = await startMount({ mnt, stateDir, env: { NODE_OPTIONS: `--require ${slow}` } });
    assert.match(again.stderr(), /cleaned a stale mount left at .* by a crashed process/);
    await stopCleanly(again);
  });

  it('refuses a state directory that cannot be made (under /proc: Node\'s recursive mkdir spun there for good) with one line', async () => {
    const { mnt } = fresh();
    const r = await mountMustFail({ mnt, stateDir: '/proc/aether-nope/state' }, 20_000);
    assert.equal(r.code, 2, r.stderr);
    assertOneLine(r, /state directory \/proc\/aether-nope\/state cannot be created \(ENOENT\)/);
  });

  it('a state directory whose parts are not directories, are read-only, or that lies on another FUSE mount is refused in one line naming the part (a review: raw EEXIST, "attempt to write a readonly database", "listen ENOTSUP")', async () => {
    const { base, mnt, stateDir } = fresh();
    mkdirSync(stateDir);
    writeFileSync(join(stateDir, 'journal'), 'not a directory');
    let r = await mountMustFail({ mnt, stateDir });
    assertOneLine(r, /journal directory .*\/journal is not a directory \(or a parent of it is not\)/);
    rmSync(join(stateDir, 'journal'));
    // The store on a read-only file system (root writes anywhere else).
    mkdirSync(join(stateDir, 'store'));
    spawnSync('mount', ['--bind', join(stateDir, 'store'), join(stateDir, 'store')]);
    spawnSync('mount', ['-o', 'remount,bind,ro', join(stateDir, 'store')]);
    try {
      r = await mountMustFail({ mnt, stateDir });
      assertOneLine(r, /store directory .*\/store is not writable by this user \(a read-only file system, or another user's\)/);
    } finally {
      spawnSync('umount', [join(stateDir, 'store')]);
    }
    // On another Aether mount: no Unix socket there.
    const outer = await startMount();
    try {
      const inner = join(base, 'inner');
      mkdirSync(inner);
      r = await mountMustFail({ mnt: inner, stateDir: join(outer.mnt, 'state') });
      assertOneLine(r, /the state directory's file system cannot hold a Unix socket \(ENOTSUP; a FUSE mount, such as another Aether mount\?\)/);
    } finally {
      await stopCleanly(outer);
    }
  });

  it('a user who cannot open the FUSE device is told so in one line, before anything is created', () => {
    const { base, mnt, stateDir } = fresh();
    const device = join(base, 'fuse-device');
    writeFileSync(device, '', { mode: 0o600 });
    chmodSync(base, 0o777);
    chmodSync(mnt, 0o777);
    const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, aetherBin, 'mount', mnt, '--state-dir', stateDir], {
      encoding: 'utf8',
      env: { ...process.env, AFS_AETHER_CONFIG: '', AFS_AETHER_METRICS_LISTEN: 'off', AETHER_TEST_FUSE_DEVICE: device },
      timeout: 20_000,
    });
    assert.equal(r.status, 1, r.stderr);
    assertOneLine({ code: r.status, stdout: r.stdout, stderr: r.stderr }, /cannot open .*fuse-device \(EACCES\): mounting needs read and write access to it/);
    assert.equal(existsSync(stateDir), false);
  });

  it('a mount point whose name holds shell syntax, a newline and a backslash is mounted and unmounted as named, and nothing in the name runs', async () => {
    const { base } = fresh();
    const marker = join(base, 'ran');
    const mnt = join(base, `m $(touch ${marker}) \`x\`\nline\\end`);
    const m = await startMount({ mnt, stateDir: join(base, 'state') });
    writeFileSync(join(mnt, 'f'), 'kept');
    await stopCleanly(m);
    assert.equal(mounted(mnt), false, 'unmounted');
    assert.deepEqual(readdirSync(mnt), []);
    assert.equal(existsSync(marker), false, 'no command from the name ran');
  });

  it('a SIGTERM right after the mounted line unmounts cleanly (the handlers are in place before it)', async () => {
    const { mnt, stateDir } = fresh();
    for (let i = 0; i < 8; i++) {
      const m = await startMount({ mnt, stateDir });
      await stopCleanly(m);
      assert.match(m.stderr(), /SIGTERM: stopping/);
      assert.equal(mounted(mnt), false);
    }
  });

  for (const tool of [['fusermount3', '-u'], ['umount']]) {
    it(`unmounted by someone else (${tool.join(' ')}): the mount process stops cleanly within seconds, exit 0, and the next mount has the data`, async () => {
      const { mnt, stateDir } = fresh();
      const m = await startMount({ mnt, stateDir });
      writeFileSync(join(mnt, 'kept'), 'data');
      execFileSync(tool[0]!, [...tool.slice(1), mnt]);
      const code = await new Promise<number | null>((resolve) => m.proc.once('exit', (c) => resolve(c)));
      assert.equal(code, 0, m.stderr());
      assert.match(m.stderr(), new RegExp(`${mnt.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} was unmounted by someone else \\(fusermount -u or umount\\): stopping`));
      assert.match(m.stderr(), /unmounted: stopping \(flush, drain up to \d+ ms\)/);
      assert.doesNotMatch(m.stderr(), /stopped with errors/);
      assert.equal(mounted(mnt), false);
      const again = await startMount({ mnt, stateDir });
      assert.equal(readFileSync(join(mnt, 'kept'), 'utf8'), 'data');
      await stopCleanly(again);
    });
  }

  it('lazily unmounted (umount -l) while a program writes into it: the mount serves the program until it lets go, then stops cleanly, and every write is kept', async () => {
    const { mnt, stateDir } = fresh();
    const m = await startMount({ mnt, stateDir });
    const exited = new Promise<number | null>((resolve) => m.proc.once('exit', (c) => resolve(c)));
    const fd = openSync(join(mnt, 'log'), 'a');
    writeSync(fd, 'before\n');
    execFileSync('umount', ['-l', mnt]);
    assert.equal(mounted(mnt), false);
    // Past a few of the checks, which looked at mountinfo and stopped the mount under the writer.
    await new Promise((r) => setTimeout(r, 2500));
    writeSync(fd, 'after\n');
    assert.equal(m.proc.exitCode, null, 'still serving');
    closeSync(fd);
    assert.equal(await exited, 0, m.stderr());
    assert.match(m.stderr(), /was unmounted by someone else/);
    const again = await startMount({ mnt, stateDir });
    assert.equal(readFileSync(join(mnt, 'log'), 'utf8'), 'before\nafter\n');
    await stopCleanly(again);
  });

  it('refuses a state directory that is a file, or lies under one, with one line and exit code 2, touching nothing', async () => {
    const { base, mnt } = fresh();
    const file = join(base, 'not-a-dir');
    writeFileSync(file, 'precious');
    for (const stateDir of [file, join(file, 'state')]) {
      const r = await mountMustFail({ mnt, stateDir });
      assert.equal(r.code, 2, r.stderr);
      assertOneLine(r, /state directory .*not-a-dir.* is not a directory \(or a parent of it is not\)/);
      assert.equal(mounted(mnt), false);
    }
    assert.equal(readFileSync(file, 'utf8'), 'precious');
  });

  it('refuses a metrics address in use with one line naming metrics_listen, and leaves the state directory free', async () => {
    const { mnt, stateDir } = fresh();
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const port = (busy.address() as AddressInfo).port;
    try {
      const r = await mountMustFail({ mnt, stateDir, env: { AFS_AETHER_METRICS_LISTEN: `127.0.0.1:${port}` } });
      assert.equal(r.code, 2, r.stderr);
      assertOneLine(r, new RegExp(`metrics_listen=127\\.0\\.0\\.1:${port}: the address is in use by another process \\(choose another host:port in metrics_listen or AFS_AETHER_METRICS_LISTEN, port 0 for a free one, or off\\)`));
      assert.equal(mounted(mnt), false);
      // A wrong mount point is what the user hears about, before any state is made or port taken.
      const missing = join(mnt, 'missing');
      const freshState = join(mnt, '..', 'state-never-made');
      const r2 = await mountMustFail({ mnt: missing, stateDir: freshState, env: { AFS_AETHER_METRICS_LISTEN: `127.0.0.1:${port}` } });
      assert.equal(r2.code, 2, r2.stderr);
      assertOneLine(r2, /mount point .*missing does not exist/);
      assert.equal(existsSync(freshState), false, 'no state directory made for a mount that cannot happen');
    } finally {
      busy.close();
    }
    await stopCleanly(await startMount({ mnt, stateDir }));
  });

  it('refuses a state directory whose control socket path is too long for a Unix socket, in one line, creating nothing', async () => {
    const { base, mnt } = fresh();
    const stateDir = join(base, 'b'.repeat(120));
    const r = await mountMustFail({ mnt, stateDir });
    assert.notEqual(r.code, 0);
    assertOneLine(r, /control socket .* bytes long, over the 107 a Unix socket path may have/);
    assert.equal(existsSync(stateDir), false);
    assert.deepEqual(readdirSync(base).sort(), ['mnt'], 'no stray socket under a cut name');
  });

  it('refuses a store that lost committed data (its database removed) in one line, and deletes no pack', async () => {
    const { mnt, stateDir } = fresh();
    const m = await startMount({ mnt, stateDir });
    writeFileSync(join(mnt, 'precious'), randomBytes(1 << 20));
    await waitDrained(m);
    await stopCleanly(m);
    const packs = readdirSync(join(stateDir, 'store', 'packs')).sort();
    rmSync(join(stateDir, 'store', 'meta.sqlite'));
    const r = await mountMustFail({ mnt, stateDir });
    assert.notEqual(r.code, 0);
    assertOneLine(r, /holds journal entries up to 0, but entries up to \d+ were committed to it: its database is missing or damaged/);
    assert.deepEqual(readdirSync(join(stateDir, 'store', 'packs')).sort(), packs);
  });

  it('a store database that cannot be opened is named in the one-line refusal (SQLite names no file)', async () => {
    const { mnt, stateDir } = fresh();
    const m = await startMount({ mnt, stateDir });
    await stopCleanly(m);
    writeFileSync(join(stateDir, 'store', 'meta.sqlite'), 'x'.repeat(8192));
    rmSync(join(stateDir, 'store', 'meta.sqlite-wal'), { force: true });
    const r = await mountMustFail({ mnt, stateDir });
    assert.notEqual(r.code, 0);
    assertOneLine(r, /store .*\/store\/meta\.sqlite: file is not a database/);
  });

  it('a pack file gone from the store: reads of its data fail with EIO (not ENOENT) and the log names the pack', async () => {
    const { mnt, stateDir } = fresh();
    let m = await startMount({ mnt, stateDir });
    writeFileSync(join(mnt, 'f'), randomBytes(1 << 20));
    await waitDrained(m);
    await stopCleanly(m);
    for (const p of readdirSync(join(stateDir, 'store', 'packs'))) rmSync(join(stateDir, 'store', 'packs', p));
    m = await startMount({ mnt, stateDir });
    assert.throws(() => readFileSync(join(mnt, 'f')), { code: 'EIO' });
    const mount = m;
    for (let i = 0; i < 100 && !/cannot read chunk .* from pack .*packs/.test(mount.stderr()); i++) await new Promise((r) => setTimeout(r, 20));
    assert.match(m.stderr(), /cannot read chunk .* from pack .*packs/);
    await m.stop();
  });

  it('refuses a non-empty directory with one line and exit code 2, touching nothing', async () => {
    const { mnt, stateDir } = fresh();
    writeFileSync(join(mnt, 'precious'), 'do not hide me');
    const r = await mountMustFail({ mnt, stateDir });
    assert.equal(r.code, 2, r.stderr);
    assertOneLine(r, /mount point .*mnt is not empty/);
    assert.equal(mounted(mnt), false);
    assert.equal(readFileSync(join(mnt, 'precious'), 'utf8'), 'do not hide me');
    assert.equal(existsSync(join(stateDir, 'control.sock')), false, 'the failed mount left its control socket behind');
  });

  it('refuses a mount point that is already mounted (busy) and leaves the mount there alone', async () => {
    const { mnt, stateDir } = fresh();
    const first = await startMount({ mnt, stateDir });
    writeFileSync(join(mnt, 'in-the-first'), 'first');
    const other = fresh();
    const r = await mountMustFail({ mnt, stateDir: other.stateDir });
    assert.equal(r.code, 2, r.stderr);
    assertOneLine(r, /mount point .*mnt is already mounted/);
    assert.equal(readFileSync(join(mnt, 'in-the-first'), 'utf8'), 'first');
    writeFileSync(join(mnt, 'still-writable'), 'yes');
    assert.equal(status(first).state, 'online');
    await stopCleanly(first);
  });

  it('refuses a second mount on a state directory in use (its lock) without harming the first', async () => {
    const one = fresh();
    const env = { AFS_AETHER_JOURNAL_SYNC_POLICY: 'immediate' };
    const first = await startMount({ mnt: one.mnt, stateDir: one.stateDir, env });
    writeFileSync(join(one.mnt, 'before'), 'one');
    const two = fresh();
    const r = await mountMustFail({ mnt: two.mnt, stateDir: one.stateDir, env });
    assert.equal(r.code, 1, r.stderr);
    assertOneLine(r, new RegExp(`state directory .* is in use by another mount \\(process ${first.proc.pid}\\)`));
    assert.equal(mounted(two.mnt), false);
    assert.equal(status(first).state, 'online', 'the first still answers');
    // Even with its control socket gone, the state directory stays the first mount's.
    rmSync(join(one.stateDir, 'control.sock'));
    const three = fresh();
    const r3 = await mountMustFail({ mnt: three.mnt, stateDir: one.stateDir, env });
    assertOneLine(r3, /is in use by another mount/);
    assert.equal(mounted(three.mnt), false);

    // The first mount still serves and journals.
    writeFileSync(join(one.mnt, 'after'), 'two');
    assert.equal(readFileSync(join(one.mnt, 'before'), 'utf8'), 'one');
    await stopCleanly(first);
    const again = await startMount({ mnt: one.mnt, stateDir: one.stateDir, env });
    assert.equal(readFileSync(join(one.mnt, 'before'), 'utf8'), 'one');
    assert.equal(readFileSync(join(one.mnt, 'after'), 'utf8'), 'two');
    await stopCleanly(again);
  });

  it('a stop whose shutdown flush fails says so in one line and exits 1 (the state directory on a full 4 MiB tmpfs the journal reserves nothing on)', async () => {
    const { base, mnt, stateDir } = fresh();
    mkdirSync(stateDir);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', stateDir]);
    let m: Awaited<ReturnType<typeof startMount>> | undefined;
    try {
      // No free-space backpressure: the disk must fill under the journal, not hold the writer.
      // Without reservations (as on a file system without fallocate) a full disk fails a journal write.
      const env = { AFS_AETHER_CACHE_MIN_FREE_BYTES: '0', AFS_AETHER_CACHE_RESUME_FREE_BYTES: '0', AETHER_TEST_JOURNAL_RESERVE: 'off' };
      m = await startMount({ mnt, stateDir, env });
      writeFileSync(join(mnt, 'small'), 'fits');
      assert.throws(() => writeFileSync(join(mnt, 'big'), randomBytes(6 << 20)), { code: 'ENOSPC' });
      assert.throws(() => mkdirSync(join(mnt, 'after')), { code: 'ENOSPC' });
      assert.equal(readFileSync(join(mnt, 'small'), 'utf8'), 'fits', 'what is mounted stays readable');
      assert.match(status(m).journal.failed ?? '', /^journal write to .* failed: ENOSPC/);
      const told = () => m!.stderr().split('\n').filter((l) => l.includes('the mount now refuses every change')).length;
      for (let i = 0; i < 100 && told() === 0; i++) await new Promise((r) => setTimeout(r, 20)); // stderr arrives through a pipe
      assert.equal(told(), 1, m.stderr());
      const code = await m.stop();
      assert.equal(code, 1, m.stderr());
      assert.match(m.stderr(), /^\S+Z aether: the mount stopped with errors: journal: ENOSPC[^\n]*$/m);
      assert.doesNotMatch(m.stdout(), /unmounted/);
      assert.equal(mounted(mnt), false, 'unmounted all the same');
      assert.ok(m.stderr().split('\n').filter((l) => l.includes('drain failed')).length <= 2, `the drain's failures are not logged on every retry:\n${m.stderr()}`);
    } finally {
      await m?.stop();
      execFileSync('umount', ['-l', stateDir]);
      rmSync(base, { recursive: true, force: true });
    }
  });
});
