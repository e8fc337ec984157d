/**
 * Issue 5: a restart reproduces the tree exactly — after a clean unmount, after `kill -9` (with
 * each sync policy's durability rule met), and after `kill -9` with draining paused, where the
 * journal replay alone must rebuild everything.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  closeSync,
  ftruncateSync,
  linkSync,
  lutimesSync,
  mkdirSync,
  openSync,
  renameSync,
  rmdirSync,
  symlinkSync,
  truncateSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { killDuringStart, mountSuite, startMount, status, stopCleanly, waitDrained, type MountProcess } from './harness.js';
import { manifest, type ManifestEntry } from './manifest.js';

const MiB = 1024 * 1024;

function writeAt(path: string, offset: number, data: Buffer): void {
  const fd = openSync(path, 'r+');
  try {
    writeSync(fd, data, 0, data.length, offset);
  } finally {
    closeSync(fd);
  }
}

/**
 * Builds a tree that touches every kind of metadata and content change the mount journals.
 * Directory times are set last, since creating and removing names changes them.
 */
function buildTree(root: string): void {
  const p = (rel: string): string => join(root, rel);
  mkdirSync(p('a/b/c/d'), { recursive: true });
  mkdirSync(p('tmp'));
  mkdirSync(p('private'));
  mkdirSync(p('gone/deeper'), { recursive: true });

  writeFileSync(p('empty'), '');
  writeFileSync(p('one'), 'x');
  writeFileSync(p('a/page'), randomBytes(4096));
  writeFileSync(p('a/b/block-plus-one'), randomBytes(64 * 1024 + 1));
  writeFileSync(p('a/b/c/big'), randomBytes(MiB + 17));
  writeFileSync(p('a/b/c/d/bigger'), randomBytes(3 * MiB + 4095));
  writeFileSync(p('a/b/c/d/text.txt'), 'hello\nworld\n'.repeat(1000));

  // Sparse: data far past the start, a hole in the middle, and a size grown by truncate alone.
  const fd = openSync(p('sparse-far'), 'w');
  writeSync(fd, Buffer.from('tail'), 0, 4, 5 * MiB + 3);
  closeSync(fd);
  writeFileSync(p('sparse-mid'), randomBytes(1000));
  writeAt(p('sparse-mid'), 2 * MiB, randomBytes(1000));
  writeFileSync(p('sparse-grown'), 'start');
  truncateSync(p('sparse-grown'), 3 * MiB + 5);

  // Overwrites and truncates of existing content.
  writeFileSync(p('rewritten'), randomBytes(200 * 1024));
  writeAt(p('rewritten'), 70 * 1024, randomBytes(10 * 1024));
  writeAt(p('rewritten'), 199 * 1024, randomBytes(5 * 1024));
  writeFileSync(p('shrunk'), randomBytes(2 * MiB));
  truncateSync(p('shrunk'), MiB + 333);
  writeFileSync(p('shrunk-to-zero-then-written'), randomBytes(300 * 1024));
  truncateSync(p('shrunk-to-zero-then-written'), 0);
  writeAt(p('shrunk-to-zero-then-written'), 0, randomBytes(1234));
  const fd2 = openSync(p('ftruncated'), 'w+');
  writeSync(fd2, randomBytes(100 * 1024));
  ftruncateSync(fd2, 65 * 1024 + 7);
  writeSync(fd2, Buffer.from('after'), 0, 5, 10);
  closeSync(fd2);

  // Symbolic links: relative, absolute, dangling, to a directory.
  symlinkSync('a/page', p('link-rel'));
  symlinkSync('/etc/hostname', p('link-abs'));
  symlinkSync('nowhere/at/all', p('link-dangling'));
  symlinkSync('a/b', p('a/link-dir'));

  // Hard links across directories; one name removed again.
  writeFileSync(p('hard-1'), randomBytes(5000));
  linkSync(p('hard-1'), p('a/hard-2'));
  linkSync(p('hard-1'), p('a/b/hard-3'));
  linkSync(p('hard-1'), p('tmp/hard-4'));
  unlinkSync(p('tmp/hard-4'));
  writeAt(p('a/hard-2'), 100, Buffer.from('changed through the second name'));

  // Renames: within a directory, across directories, a directory with contents, over an existing file.
  writeFileSync(p('old-name'), randomBytes(777));
  renameSync(p('old-name'), p('new-name'));
  renameSync(p('a/page'), p('tmp/page-moved'));
  mkdirSync(p('moving/inside'), { recursive: true });
  writeFileSync(p('moving/inside/f'), randomBytes(3000));
  renameSync(p('moving'), p('a/b/moved'));
  writeFileSync(p('victim'), randomBytes(9000));
  writeFileSync(p('replacer'), randomBytes(4000));
  renameSync(p('replacer'), p('victim'));

  // Deletes.
  writeFileSync(p('gone/deeper/file'), randomBytes(10_000));
  unlinkSync(p('gone/deeper/file'));
  rmdirSync(p('gone/deeper'));
  rmdirSync(p('gone'));
  writeFileSync(p('deleted'), randomBytes(MiB));
  unlinkSync(p('deleted'));

  // Modes and owners.
  chmodSync(p('private'), 0o700);
  chmodSync(p('tmp'), 0o1777);
  chmodSync(p('one'), 0o600);
  chmodSync(p('a/b/c/big'), 0o755);
  chmodSync(p('a/b/c/d/text.txt'), 0o644);
  chmodSync(p('new-name'), 0o4755);
  chmodSync(p('a/b'), 0o2775);
  chownSync(p('a/b/c/big'), 1234, 5678);
  chownSync(p('private'), 65534, 65534);
  chownSync(p('tmp/page-moved'), 4242, 0);
  chownSync(p('one'), 0, 100);

  // Explicit times last, deepest first, so later changes do not move them; fractions a double holds exactly.
  const t = (s: number): Date => new Date(s * 1000);
  utimesSync(p('empty'), t(1_000_000_000.25), t(1_100_000_000.5));
  utimesSync(p('a/b/c/big'), t(1_500_000_000), t(1_234_567_890.125));
  utimesSync(p('sparse-far'), t(1_600_000_000), t(946_684_800));
  lutimesSync(p('link-dangling'), t(1_300_000_000), t(1_400_000_000.875));
  utimesSync(p('a/b/c/d'), t(1_200_000_000), t(1_200_000_001));
  utimesSync(p('a/b/c'), t(1_200_000_002), t(1_200_000_003));
  utimesSync(p('tmp'), t(1_700_000_000), t(1_700_000_001.5));
}

/**
 * Changes files whose bytes are committed in the store and clean in the cache (and its index):
 * overwrites inside and across blocks, a shrink then regrowth past a hole, appends, a rename
 * over a file, and a delete.
 */
function changeTree(root: string): void {
  const p = (rel: string): string => join(root, rel);
  writeAt(p('a/b/c/big'), 1000, randomBytes(70 * 1024));
  writeAt(p('a/b/c/big'), MiB - 10, randomBytes(20));
  truncateSync(p('a/b/c/d/bigger'), 100 * 1024 + 1);
  writeAt(p('a/b/c/d/bigger'), 2 * MiB, randomBytes(5000));
  writeAt(p('rewritten'), 200 * 1024, randomBytes(64 * 1024));
  truncateSync(p('sparse-far'), 5 * MiB + 5);
  writeAt(p('a/b/block-plus-one'), 0, Buffer.from('head'));
  renameSync(p('shrunk'), p('a/b/block-plus-one'));
  unlinkSync(p('sparse-mid'));
  const t = new Date(1_650_000_000_000);
  utimesSync(p('a/b/c/big'), t, t);
}

function byPath(entries: ManifestEntry[]): Map<string, ManifestEntry> {
  return new Map(entries.map((e) => [e.path, e]));
}

/** Sanity of the built tree itself, so an identical but wrong manifest cannot pass. */
function checkBuilt(m: ManifestEntry[]): void {
  const e = byPath(m);
  const get = (path: string): ManifestEntry => e.get(path) ?? assert.fail(`${path} missing from the manifest`);
  assert.equal(get('empty').size, 0);
  assert.equal(get('a/b/c/d/bigger').size, 3 * MiB + 4095);
  assert.equal(get('sparse-far').size, 5 * MiB + 7);
  assert.equal(get('sparse-grown').size, 3 * MiB + 5);
  assert.equal(get('shrunk').size, MiB + 333);
  assert.equal(get('ftruncated').size, 65 * 1024 + 7);
  assert.equal(get('hard-1').nlink, 3);
  for (const name of ['a/b/hard-3', 'a/hard-2', 'hard-1']) assert.equal(get(name).inodeOf, 'a/b/hard-3', name);
  assert.equal(get('link-dangling').target, 'nowhere/at/all');
  assert.equal(get('tmp').mode, '1777');
  assert.equal(get('private').mode, '0700');
  assert.equal(get('new-name').mode, '4755');
  assert.equal(get('a/b').mode, '2775');
  assert.deepEqual([get('a/b/c/big').uid, get('a/b/c/big').gid], [1234, 5678]);
  assert.equal(get('a/b/c/big').mtimeMs, 1_234_567_890_125);
  assert.equal(get('empty').atimeMs, 1_000_000_000_250);
  assert.equal(get('link-dangling').mtimeMs, 1_400_000_000_875);
  assert.equal(get('a/b/c').mtimeMs, 1_200_000_003_000);
  assert.equal(get('a/b/moved/inside/f').size, 3000);
  for (const gone of ['gone', 'deleted', 'old-name', 'replacer', 'a/page', 'tmp/hard-4', 'moving']) assert.equal(e.has(gone), false, gone);
}

describe('a restart reproduces the tree exactly', () => {
  const suite = mountSuite();

  /** Mounts, builds the tree, runs `crash` (which ends the mount), remounts and compares. */
  async function roundTrip(env: Record<string, string>, crash: (m: MountProcess) => Promise<void>, prepare?: (m: MountProcess) => void): Promise<{ before: ManifestEntry[]; remount: MountProcess }> {
    const base = suite.dir('aether-restart-');
    const opts = { mnt: join(base, 'mnt'), stateDir: join(base, 'state'), env };
    const m = await startMount(opts);
    prepare?.(m);
    buildTree(m.mnt);
    const before = manifest(m.mnt);
    checkBuilt(before);
    await crash(m);
    const remount = await startMount(opts);
    assert.deepEqual(manifest(remount.mnt), before, 'the tree after the restart differs');
    return { before, remount };
  }

  /** Compares again from the store alone: drains everything, drops the clean cache, restarts cleanly. */
  async function fromStore(m: MountProcess, before: ManifestEntry[], env: Record<string, string>): Promise<void> {
    await waitDrained(m);
    assert.equal(m.ctl(['cache', 'clear']).code, 0);
    assert.deepEqual(manifest(m.mnt), before, 'the tree read back from the store differs');
    await stopCleanly(m);
    const again = await startMount({ mnt: m.mnt, stateDir: m.stateDir, env });
    assert.equal(again.ctl(['cache', 'clear']).code, 0);
    assert.deepEqual(manifest(again.mnt), before, 'the tree after a second restart differs');
    await stopCleanly(again);
  }

  it('(a) after a clean unmount (SIGTERM) and remount', async () => {
    const env = {};
    const { before, remount } = await roundTrip(env, async (m) => {
      await stopCleanly(m);
      assert.match(m.stderr(), /SIGTERM: stopping/);
    });
    await fromStore(remount, before, env);
  });

  for (const [policy, meetContract] of [
    ['immediate', () => undefined],
    ['interval', () => new Promise((r) => setTimeout(r, 100))],
    ['manual', (m: MountProcess) => assert.equal(m.ctl(['journal', 'flush']).code, 0)],
  ] as const) {
    it(`(b) after kill -9 and remount, sync policy ${policy}`, async () => {
      const env = { AFS_AETHER_JOURNAL_SYNC_POLICY: policy };
      const { before, remount } = await roundTrip(env, async (m) => {
        await meetContract(m);
        await m.kill9();
      });
      await fromStore(remount, before, env);
    });
  }

  it('(c) after kill -9 with draining paused: the journal replay alone rebuilds the tree', async () => {
    const env = { AFS_AETHER_JOURNAL_SYNC_POLICY: 'immediate' };
    const { before, remount } = await roundTrip(
      env,
      async (m) => {
        const s = status(m);
        // Nothing drained: everything the restart shows must come from the journal replay.
        assert.equal(s.sync.state, 'paused');
        assert.equal(s.journal.committed_seq, 0);
        assert.ok(s.journal.last_seq > 100, `only ${s.journal.last_seq} journal entries`);
        await m.kill9();
      },
      (m) => assert.equal(m.ctl(['sync', 'pause']).code, 0),
    );
    await fromStore(remount, before, env);
  });

  it('(d) changes over committed, cached data, then kill -9: the journal wins over the store and the cache index', async () => {
    const base = suite.dir('aether-restart-');
    const opts = { mnt: join(base, 'mnt'), stateDir: join(base, 'state'), env: { AFS_AETHER_JOURNAL_SYNC_POLICY: 'immediate' } };
    const m = await startMount(opts);
    buildTree(m.mnt);
    await stopCleanly(m);
    // Now everything is in the store, and the cache index lists it clean: read it all back into the cache.
    const warm = await startMount(opts);
    manifest(warm.mnt);
    await stopCleanly(warm);
    const m2 = await startMount(opts);
    manifest(m2.mnt);
    assert.equal(m2.ctl(['sync', 'pause']).code, 0);
    changeTree(m2.mnt);
    const before = manifest(m2.mnt);
    assert.equal(before.find((e) => e.path === 'a/b/c/d/bigger')?.size, 2 * MiB + 5000);
    await m2.kill9();
    const again = await startMount(opts);
    assert.deepEqual(manifest(again.mnt), before, 'the tree after the restart differs');
    await fromStore(again, before, opts.env);
  });

  it('(e) kill -9 again and again during the start-up replay loses nothing', async (t) => {
    const base = suite.dir('aether-restart-');
    const opts = { mnt: join(base, 'mnt'), stateDir: join(base, 'state'), env: { AFS_AETHER_JOURNAL_SYNC_POLICY: 'immediate' } };
    const m = await startMount(opts);
    assert.equal(m.ctl(['sync', 'pause']).code, 0);
    buildTree(m.mnt);
    for (let i = 0; i < 24; i++) writeFileSync(join(m.mnt, 'tmp', `bulk-${i}`), randomBytes(MiB + i));
    const before = manifest(m.mnt);
    await m.kill9();
    // Each start replays the whole journal (nothing was drained); kill it at growing points of that.
    let killedStarting = 0;
    for (const afterMs of [150, 200, 250, 300, 400, 600]) {
      const r = await killDuringStart(opts, afterMs);
      if (!r.mounted) killedStarting++;
      t.diagnostic(`killed ${afterMs} ms into a start (${r.mounted ? 'mounted' : 'still starting'})`);
      assert.doesNotMatch(r.stderr, /does not apply|cannot mount/, r.stderr);
    }
    assert.ok(killedStarting > 0, 'no kill landed before the mount was up');
    const again = await startMount(opts);
    assert.deepEqual(manifest(again.mnt), before, 'the tree after the restarts differs');
    await fromStore(again, before, opts.env);
  });
});
