/**
 * Local mode hands the attributes the kernel asks for right after a change (the parent directory,
 * a new name, a file after a write or a read) to the patched binding, which answers those getattr
 * requests without a round trip to JS (fuse-binding.ts BindingAttrs, FUSE.md). These tests check
 * that the answers are used and that they are always current: after every kind of change stat
 * answers what the change made, and at the end what a fresh mount (nothing cached anywhere)
 * answers for the same tree.
 */
import assert from 'node:assert/strict';
import { appendFileSync, chmodSync, closeSync, fchmodSync, fchownSync, linkSync, lstatSync, mkdirSync, openSync, readFileSync, renameSync, rmdirSync, statSync, symlinkSync, truncateSync, unlinkSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { metric, startMount, stopAll, stopCleanly, withKernelCaches, type MountProcess } from './harness.js';
import { manifest } from './manifest.js';

const answers = (m: MountProcess) => metric(m, /^aether_fuse_binding_answers_total /);
const absentAnswers = (m: MountProcess) => metric(m, /^aether_fuse_ops_total\{op="getattr",result="ENOENT"\}/);

/** Makes the kernel forget the names it holds, so that the next stat of each asks the mount again. */
function dropKernelNames(): void {
  writeFileSync('/proc/sys/vm/drop_caches', '2');
}
const jsOps = (m: MountProcess, op: string) => metric(m, new RegExp(`^aether_fuse_op_duration_seconds_count\\{op="${op}"\\}`));
const allOps = (m: MountProcess, op: string) => metric(m, new RegExp(`^aether_fuse_ops_total\\{op="${op}",result="ok"\\}`));
const jsGetattrs = (m: MountProcess) => metric(m, /^aether_fuse_op_duration_seconds_count\{op="getattr"\}/);

/** Stats of `paths` as the running mount answers them: size, nlink, mode, times. */
function stats(mnt: string, paths: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of paths) {
    const s = lstatSync(join(mnt, p), { bigint: true });
    out[p] = `size=${s.size} nlink=${s.nlink} mode=${s.mode.toString(8)} mtime=${s.mtimeNs / 1_000_000n} ctime=${s.ctimeNs / 1_000_000n}`;
  }
  return out;
}

/**
 * What `tar x` as root does after writing each of `n` files: fchown to the ids it already has,
 * then fchmod. Half of them wait for the next millisecond first: then the ctime must move, which
 * only JS does. Every fifth changes the group, and every seventh the mode. After each call the
 * ctime lies within that call's millisecond and the ids and mode are those asked for; returns
 * what each file must hold and how many of the calls JS answered.
 */
async function chownLikeTar(m: MountProcess, n: number): Promise<{ expected: Record<string, { uid: number; gid: number; mode: number }>; byJs: { chown: number; chmod: number } }> {
  const at = (p: string) => join(m.mnt, p);
  mkdirSync(at('t'));
  const ms = (p: string) => {
    const s = lstatSync(at(p), { bigint: true });
    return { ctime: Number(s.ctimeNs / 1_000_000n), uid: Number(s.uid), gid: Number(s.gid), mode: Number(s.mode) & 0o7777 };
  };
  const jsBefore = { chown: await jsOps(m, 'chown'), chmod: await jsOps(m, 'chmod') };
  const before = { chown: await allOps(m, 'chown'), chmod: await allOps(m, 'chmod') };
  const expected: Record<string, { uid: number; gid: number; mode: number }> = {};
  for (let i = 0; i < n; i++) {
    const name = `t/f${i}`;
    const fd = openSync(at(name), 'w', 0o640);
    writeSync(fd, 'x');
    const wrote = Date.now();
    if (i % 2 === 1) while (Date.now() <= wrote + 1) { /* the next millisecond */ }
    const gid = i % 5 === 0 && i % 3 !== 1 ? 4321 : 0;
    const mode = i % 7 === 0 ? 0o600 : 0o640;
    const t0 = Date.now();
    // An id of -1 is left alone (both -1 asks nothing of the file system: the kernel sends no change).
    fchownSync(fd, i % 3 === 0 ? -1 : 0, i % 3 === 1 ? -1 : gid);
    const t1 = Date.now();
    const owned = ms(name);
    assert.ok(owned.ctime >= t0 && owned.ctime <= t1, `${name}: the chown's ctime ${owned.ctime} is its own millisecond (${t0}-${t1})`);
    assert.equal(owned.gid, gid, `${name}: group`);
    const t2 = Date.now();
    fchmodSync(fd, mode);
    const t3 = Date.now();
    const moded = ms(name);
    assert.ok(moded.ctime >= t2 && moded.ctime <= t3, `${name}: the chmod's ctime ${moded.ctime} is its own millisecond (${t2}-${t3})`);
    assert.equal(moded.mode, mode, `${name}: mode`);
    closeSync(fd);
    expected[name] = { uid: 0, gid, mode };
  }
  const byJs = { chown: 0, chmod: 0 };
  for (const op of ['chown', 'chmod'] as const) {
    assert.equal((await allOps(m, op)) - before[op], n, `every ${op} is counted`);
    byJs[op] = (await jsOps(m, op)) - jsBefore[op];
  }
  return { expected, byJs };
}

describe('local mode: attributes answered by the binding', () => {
  after(stopAll);

  it('rm -r and create ask JS for no directory attributes, and the answers equal a fresh mount\'s', () => withKernelCaches(async () => {
    const m = await startMount();
    const d = join(m.mnt, 'd');
    mkdirSync(d);
    for (let i = 0; i < 40; i++) writeFileSync(join(d, `f${i}`), 'x'.repeat(i));
    const jsBefore = await jsGetattrs(m);
    const answeredBefore = await answers(m);
    for (let i = 0; i < 20; i++) unlinkSync(join(d, `f${i}`));
    // Each unlink dropped d's attributes in the kernel; the permission check of the next one asked again.
    assert.ok((await answers(m)) - answeredBefore >= 19, 'the binding answered the directory getattr after each unlink');
    assert.ok((await jsGetattrs(m)) - jsBefore <= 2, 'JS saw (almost) no getattr during the unlinks');
    const seen = manifest(m.mnt);
    await stopCleanly(m);
    const fresh = await startMount({ mnt: m.mnt, stateDir: m.stateDir });
    assert.deepEqual(manifest(fresh.mnt), seen, 'what the mount answered during the changes is what a fresh mount answers');
    await fresh.stop();
  }));

  it('a directory made by the mount answers lookups of absent names itself, and never loses a name it holds', () => withKernelCaches(async () => {
    const m = await startMount();
    const at = (p: string) => join(m.mnt, p);
    const gone = (p: string) => assert.throws(() => lstatSync(at(p)), { code: 'ENOENT' }, `${p} is absent`);
    mkdirSync(at('d'));
    const jsBefore = await jsGetattrs(m);
    const absentBefore = await absentAnswers(m);
    // What `create` and `tar x` do before each new file: look its name up.
    for (let i = 0; i < 30; i++) gone(`d/new${i}`);
    assert.equal((await absentAnswers(m)) - absentBefore, 30, 'each absent name was answered ENOENT');
    assert.ok((await jsGetattrs(m)) - jsBefore <= 1, 'by the binding: JS saw no lookup');
    // A name over 255 bytes is not absent but too long, as JS answers it anywhere else.
    assert.throws(() => lstatSync(at(`d/${'n'.repeat(256)}`)), { code: 'ENAMETOOLONG' });
    assert.throws(() => lstatSync(at(`d/${'m'.repeat(300)}/f`)), { code: 'ENAMETOOLONG' });
    // Names the directory gains in every way, some of which the binding never gets attributes
    // for (a second hard link, a file open for writing, one whose mode changed through its other
    // name): each must stay known to exist.
    writeFileSync(at('d/file'), 'data');
    mkdirSync(at('d/sub'));
    writeFileSync(at('d/sub/inner'), 'x');
    symlinkSync('file', at('d/link'));
    writeFileSync(at('d/a'), 'aa');
    linkSync(at('d/a'), at('d/b'));
    chmodSync(at('d/b'), 0o600);
    const fd = openSync(at('d/file'), 'r+');
    writeSync(fd, 'DATA');
    assert.throws(() => writeFileSync(at('d/file'), 'x', { flag: 'wx' }), { code: 'EEXIST' });
    assert.throws(() => mkdirSync(at('d/sub')), { code: 'EEXIST' });
    writeFileSync(at('d/doomed'), 'x');
    unlinkSync(at('d/doomed'));
    mkdirSync(at('d/empty'));
    rmdirSync(at('d/empty'));
    const present = ['d/file', 'd/sub', 'd/sub/inner', 'd/link', 'd/a', 'd/b'];
    const before = stats(m.mnt, present);
    dropKernelNames();
    assert.deepEqual(stats(m.mnt, present), before, 'every name the directories hold is found again, with its attributes');
    for (const p of ['d/doomed', 'd/empty', 'd/sub/none', 'd/new0']) gone(p);
    closeSync(fd);
    // A rename forgets every directory's completeness: names moved in are found after it too.
    writeFileSync(at('outside'), 'o');
    renameSync(at('outside'), at('d/sub/moved'));
    dropKernelNames();
    assert.equal(readFileSync(at('d/sub/moved'), 'utf8'), 'o');
    gone('d/sub/none2');
    const seen = manifest(m.mnt);
    await stopCleanly(m);
    const fresh = await startMount({ mnt: m.mnt, stateDir: m.stateDir });
    assert.deepEqual(manifest(fresh.mnt), seen, 'the tree equals a fresh mount\'s');
    await fresh.stop();
  }));

  it('chown and chmod that change nothing are answered by the binding, each with what JS would have made', () => withKernelCaches(async () => {
    const m = await startMount();
    const { expected, byJs } = await chownLikeTar(m, 200);
    // JS answers at least the chowns a millisecond later, and the chmods that change the mode.
    assert.ok(byJs.chown < 200 && byJs.chown >= 100, `the binding answered some chown requests (${byJs.chown} of 200 by JS)`);
    assert.ok(byJs.chmod < 200 && byJs.chmod >= 29, `the binding answered some chmod requests (${byJs.chmod} of 200 by JS)`);
    const seen = manifest(m.mnt);
    await stopCleanly(m);
    const fresh = await startMount({ mnt: m.mnt, stateDir: m.stateDir });
    assert.deepEqual(manifest(fresh.mnt), seen, 'the tree equals a fresh mount\'s');
    for (const [name, want] of Object.entries(expected)) {
      const s = lstatSync(join(fresh.mnt, name));
      assert.deepEqual({ uid: s.uid, gid: s.gid, mode: s.mode & 0o7777 }, want, name);
    }
    await fresh.stop();
  }));

  it('under the immediate sync policy JS answers every chown and chmod (each answer waits for the disk)', () => withKernelCaches(async () => {
    const m = await startMount({ env: { AFS_AETHER_JOURNAL_SYNC_POLICY: 'immediate' } });
    const { byJs } = await chownLikeTar(m, 60);
    assert.deepEqual(byJs, { chown: 60, chmod: 60 });
    await m.stop();
  }));

  it('every change keeps the answers current: directories, new names, hard links, renames, attribute changes', () => withKernelCaches(async () => {
    const m = await startMount();
    const at = (p: string) => join(m.mnt, p);
    const st = (p: string) => statSync(at(p));
    const gone = (p: string) => assert.throws(() => statSync(at(p)), { code: 'ENOENT' }, `${p} is gone`);
    // One mount throughout, so that what a change handed over meets the changes after it. After
    // each change, what stat answers must be what that change made.
    mkdirSync(at('a'));
    assert.equal(st('').nlink, 3);
    mkdirSync(at('a/sub'));
    assert.equal(st('a').nlink, 3);
    writeFileSync(at('a/one'), 'hello');
    assert.equal(st('a/one').size, 5);
    assert.equal(readFileSync(at('a/one'), 'utf8'), 'hello');
    appendFileSync(at('a/one'), ' world');
    assert.equal(st('a/one').size, 11, 'a write after a read');
    assert.throws(() => mkdirSync(at('a')), { code: 'EEXIST' });
    assert.equal(st('a/one').size, 11, 'a refused change leaves what was handed over');
    linkSync(at('a/one'), at('a/two'));
    assert.deepEqual([st('a/one').nlink, st('a/two').nlink], [2, 2]);
    appendFileSync(at('a/one'), '!');
    assert.deepEqual([st('a/one').size, st('a/two').size], [12, 12], 'a write through one name shows through the other');
    truncateSync(at('a/two'), 3);
    assert.deepEqual([st('a/one').size, st('a/two').size], [3, 3], 'a truncate through the other name');
    chmodSync(at('a/two'), 0o600);
    assert.equal(st('a/one').mode & 0o777, 0o600);
    unlinkSync(at('a/two'));
    assert.equal(st('a/one').nlink, 1);
    chmodSync(at('a'), 0o750);
    assert.equal(st('a').mode & 0o777, 0o750);
    utimesSync(at('a/sub'), 1_000_000, 2_000_000);
    assert.equal(st('a/sub').mtimeMs, 2_000_000_000);
    symlinkSync('one', at('a/link'));
    assert.equal(st('a/link').size, 3, 'stat follows the new link');
    writeFileSync(at('a/sub/inner'), 'inner');
    assert.equal(st('a/sub/inner').size, 5);
    renameSync(at('a/sub'), at('b'));
    gone('a/sub');
    gone('a/sub/inner');
    assert.equal(st('b/inner').size, 5);
    assert.deepEqual([st('a').nlink, st('').nlink], [2, 4]);
    renameSync(at('a/one'), at('b/one'));
    gone('a/one');
    assert.equal(st('b/one').size, 3);
    unlinkSync(at('b/one'));
    unlinkSync(at('b/inner'));
    rmdirSync(at('b'));
    gone('b');
    assert.equal(st('').nlink, 3);
    // A file unlinked while open keeps a hidden name libfuse chose; writes through the open
    // descriptor arrive under that name, and must show through the file's other name.
    mkdirSync(at('h'));
    writeFileSync(at('h/A'), 'hi');
    linkSync(at('h/A'), at('h/B'));
    const fd = openSync(at('h/A'), 'a');
    unlinkSync(at('h/A'));
    assert.equal(readFileSync(at('h/B'), 'utf8'), 'hi');
    assert.equal(st('h/B').size, 2);
    writeSync(fd, 'more');
    assert.equal(st('h/B').size, 6, 'a write through the descriptor of the unlinked name shows through the other name');
    closeSync(fd);
    assert.equal(st('h/B').size, 6);
    const names = ['', 'a', 'a/link', 'h', 'h/B'];
    const seen = stats(m.mnt, names);
    assert.ok((await answers(m)) > 0, 'the binding answered some of them');
    await stopCleanly(m);
    const fresh = await startMount({ mnt: m.mnt, stateDir: m.stateDir });
    assert.deepEqual(stats(fresh.mnt, names), seen, 'the times answered equal a fresh mount\'s');
    await fresh.stop();
  }));
});
