// Issue 5: edge cases of the file system semantics, through a real mount (a child `aether mount`).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  closeSync,
  constants,
  fstatSync,
  ftruncateSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmdirSync,
  statSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startMount, type MountProcess } from './harness.js';
import { errnoOf, eventually, freshDirs, NOBODY, nodeAs, openHandles, openToOthers, owner, py, readAt, sh, stopAndClean } from './posix-helpers.js';

const { O_CREAT, O_EXCL, O_WRONLY, O_RDWR, O_APPEND, O_TRUNC } = constants;
const GiB = 1024 ** 3;

describe('edge cases through a real mount', () => {
  let m: MountProcess;
  const fresh = freshDirs(() => m, 'e');
  /** Names in a directory, hidden ones included: `.fuse_hidden*` must never show. */
  const names = (d: string): string[] => readdirSync(d).sort();

  before(async () => {
    m = await startMount({ args: ['--allow-other'] });
    openToOthers(m);
  });
  after(() => stopAndClean(m));

  it('a sparse file: a write at 1 GiB gives the right size, holes read as zeros, and du stays small', () => {
    const d = fresh();
    const p = join(d, 'sparse');
    const fd = openSync(p, 'w+');
    assert.equal(writeSync(fd, 'head'), 4);
    assert.equal(writeSync(fd, 'END', GiB), 3);
    assert.equal(fstatSync(fd).size, GiB + 3);
    assert.deepEqual(readAt(fd, 4, 16), Buffer.alloc(16));
    assert.deepEqual(readAt(fd, GiB / 2, 4096), Buffer.alloc(4096));
    assert.deepEqual(readAt(fd, GiB - 2, 8), Buffer.from('\0\0END'));
    assert.deepEqual(readAt(fd, 0, 6), Buffer.from('head\0\0'));
    closeSync(fd);
    const s = statSync(p);
    assert.equal(s.size, GiB + 3);
    assert.ok(s.blocks * 512 <= 128 * 1024, `st_blocks ${s.blocks} (${s.blocks * 512} bytes) is small`);
    const duKiB = Number(sh(`du -k sparse`, d).split('\t')[0]);
    assert.ok(duKiB <= 128, `du -k says ${duKiB}`);
    // A dense file is all allocated.
    writeFileSync(join(d, 'dense'), Buffer.alloc(100_000, 1));
    // Counted in whole 4 KiB blocks, as ext4 does (du agrees with a local disk).
    assert.equal(statSync(join(d, 'dense')).blocks, Math.ceil(100_000 / 4096) * 8);
  });

  it('offsets past 4 GiB: a write at 5 GiB reads back there, and the size is exact', () => {
    const d = fresh();
    const p = join(d, 'big');
    const at = 5 * GiB + 12345;
    const fd = openSync(p, 'w');
    assert.equal(writeSync(fd, 'past-4GiB', at), 9);
    assert.equal(writeSync(fd, 'edge', 4 * GiB - 2), 4);
    closeSync(fd);
    assert.equal(statSync(p).size, at + 9);
    const r = openSync(p, 'r');
    assert.equal(readAt(r, at, 100).toString(), 'past-4GiB');
    assert.deepEqual(readAt(r, 4 * GiB - 3, 6), Buffer.from('\0edge\0'));
    assert.deepEqual(readAt(r, at - 4, 4), Buffer.alloc(4));
    closeSync(r);
    const t = openSync(p, 'r+');
    ftruncateSync(t, 4 * GiB + 1);
    closeSync(t);
    assert.equal(statSync(p).size, 4 * GiB + 1);
  });

  it('O_APPEND: two descriptors append in turn and never overwrite each other', () => {
    const d = fresh();
    const p = join(d, 'log');
    const a = openSync(p, O_CREAT | O_WRONLY | O_APPEND, 0o644);
    const b = openSync(p, O_WRONLY | O_APPEND);
    writeSync(a, 'a1;');
    writeSync(b, 'b1;');
    // The position given is ignored under O_APPEND: the end of file it is.
    writeSync(a, 'a2;', 0);
    writeSync(b, 'b2;', 1);
    closeSync(a);
    closeSync(b);
    assert.equal(readFileSync(p, 'utf8'), 'a1;b1;a2;b2;');
  });

  it('O_APPEND: two processes appending at once lose no line', async () => {
    const d = fresh();
    const p = join(d, 'log');
    writeFileSync(p, '');
    const LINES = 300;
    const writer = (tag: string) => new Promise<number | null>((resolve) => {
      const child = spawn(process.execPath, ['-e', `
        const fs = require('node:fs');
        const fd = fs.openSync(${JSON.stringify(p)}, 'a');
        for (let i = 0; i < ${LINES}; i++) fs.writeSync(fd, '${tag}' + String(i).padStart(4, '0') + '\\n');
        fs.closeSync(fd);`], { stdio: 'inherit' });
      child.once('exit', resolve);
    });
    assert.deepEqual(await Promise.all([writer('A'), writer('B')]), [0, 0]);
    const lines = readFileSync(p, 'utf8').split('\n').slice(0, -1);
    assert.equal(lines.length, 2 * LINES);
    for (const tag of ['A', 'B']) {
      const mine = lines.filter((l) => l.startsWith(tag));
      assert.deepEqual(mine, Array.from({ length: LINES }, (_, i) => tag + String(i).padStart(4, '0')), `${tag}'s lines, whole and in order`);
    }
  });

  it('O_TRUNC empties an existing file and keeps its inode; O_EXCL creates only a new name', () => {
    const d = fresh();
    const p = join(d, 'f');
    writeFileSync(p, 'old content');
    const ino = statSync(p).ino;
    const fd = openSync(p, O_WRONLY | O_TRUNC);
    assert.equal(fstatSync(fd).size, 0);
    writeSync(fd, 'new');
    closeSync(fd);
    assert.equal(readFileSync(p, 'utf8'), 'new');
    assert.equal(statSync(p).ino, ino);
    const x = openSync(join(d, 'excl'), O_CREAT | O_EXCL | O_RDWR, 0o600);
    writeSync(x, 'mine');
    closeSync(x);
    assert.equal(errnoOf(() => openSync(join(d, 'excl'), O_CREAT | O_EXCL | O_RDWR, 0o600)), 'EEXIST');
    assert.equal(readFileSync(join(d, 'excl'), 'utf8'), 'mine');
  });

  it('an unlinked file that is still open stays readable and writable; its name is gone; no .fuse_hidden name is listed', async () => {
    const d = fresh();
    const p = join(d, 'tmp');
    writeFileSync(join(d, 'other'), 'o');
    const fd = openSync(p, 'w+');
    writeSync(fd, 'before');
    unlinkSync(p);
    assert.deepEqual(names(d), ['other']);
    assert.equal(errnoOf(() => statSync(p)), 'ENOENT');
    writeSync(fd, '-after');
    assert.equal(readAt(fd, 0, 100).toString(), 'before-after');
    assert.deepEqual([fstatSync(fd).nlink, fstatSync(fd).size], [0, 12]);
    ftruncateSync(fd, 3);
    assert.equal(readAt(fd, 0, 100).toString(), 'bef');
    // The same name can be created anew, independent of the open file.
    writeFileSync(p, 'fresh');
    assert.equal(readAt(fd, 0, 100).toString(), 'bef');
    assert.deepEqual(names(d), ['other', 'tmp']);
    closeSync(fd);
    assert.ok(await eventually(() => openHandles(m) === 0));
    assert.deepEqual(names(d), ['other', 'tmp']);
    assert.equal(readFileSync(p, 'utf8'), 'fresh');
  });

  it('an open file that loses one of two names: fstat and the other name both show one link', async () => {
    const d = fresh();
    const fd = openSync(join(d, 'a'), 'w+');
    try {
      writeSync(fd, 'one');
      linkSync(join(d, 'a'), join(d, 'b'));
      unlinkSync(join(d, 'a'));
      writeSync(fd, '-two');
      assert.deepEqual([fstatSync(fd).nlink, statSync(join(d, 'b')).nlink], [1, 1]);
      assert.equal(fstatSync(fd).ino, statSync(join(d, 'b')).ino);
      assert.equal(readFileSync(join(d, 'b'), 'utf8'), 'one-two');
      unlinkSync(join(d, 'b'));
      assert.equal(fstatSync(fd).nlink, 0);
      assert.deepEqual(names(d), []);
    } finally {
      closeSync(fd);
    }
    assert.ok(await eventually(() => openHandles(m) === 0));
    assert.deepEqual(names(d), []);
  });

  it('an unlinked open file keeps working after its directory is renamed', async () => {
    const d = fresh();
    mkdirSync(join(d, 'r1'));
    const fd = openSync(join(d, 'r1', 'f'), 'w+');
    try {
      writeSync(fd, 'x');
      unlinkSync(join(d, 'r1', 'f'));
      renameSync(join(d, 'r1'), join(d, 'r2'));
      assert.equal(writeSync(fd, 'yz'), 2);
      assert.equal(readAt(fd, 0, 10).toString(), 'xyz');
      assert.deepEqual([fstatSync(fd).size, fstatSync(fd).nlink], [3, 0]);
    } finally {
      closeSync(fd);
    }
    assert.ok(await eventually(() => openHandles(m) === 0));
    assert.deepEqual(names(join(d, 'r2')), []);
    rmdirSync(join(d, 'r2'));
  });

  it('rmdir of a directory whose only entry is an unlinked open file: ENOTEMPTY until it is closed (libfuse 2.9 limit)', async () => {
    // POSIX lets this rmdir succeed. libfuse 2.9's high-level API builds every request's path
    // from its own name table, and once the directory is gone it answers ENOENT for I/O on the
    // open file before Aether sees it (measured). Aether keeps the open file working instead, and
    // refuses the rmdir, or a rename over the directory, while the hidden file exists (FUSE.md).
    const d = fresh();
    mkdirSync(join(d, 'dir'));
    mkdirSync(join(d, 'other'));
    const fd = openSync(join(d, 'dir', 'f'), 'w+');
    try {
      writeSync(fd, 'x');
      unlinkSync(join(d, 'dir', 'f'));
      assert.deepEqual(names(join(d, 'dir')), []);
      assert.equal(errnoOf(() => rmdirSync(join(d, 'dir'))), 'ENOTEMPTY');
      assert.equal(errnoOf(() => renameSync(join(d, 'other'), join(d, 'dir'))), 'ENOTEMPTY');
      assert.equal(writeSync(fd, 'yz'), 2);
      assert.equal(readAt(fd, 0, 10).toString(), 'xyz');
    } finally {
      closeSync(fd);
    }
    assert.ok(await eventually(() => errnoOf(() => rmdirSync(join(d, 'dir'))) === 'ok'), 'rmdir works once the file is closed');
    assert.deepEqual(names(d), ['other']);
  });

  it('a user\'s own rename to a .fuse_hidden name is an ordinary rename: the file stays, listed and readable', () => {
    const d = fresh();
    writeFileSync(join(d, 'a'), 'kept a');
    writeFileSync(join(d, 'b'), 'kept b');
    // libfuse hides open files as .fuse_hidden<16 hex digits>; a file that is not open is never hidden.
    renameSync(join(d, 'a'), join(d, '.fuse_hidden_mine'));
    renameSync(join(d, 'b'), join(d, '.fuse_hidden0000001200000001'));
    assert.deepEqual(names(d), ['.fuse_hidden0000001200000001', '.fuse_hidden_mine']);
    assert.equal(readFileSync(join(d, '.fuse_hidden_mine'), 'utf8'), 'kept a');
    assert.equal(readFileSync(join(d, '.fuse_hidden0000001200000001'), 'utf8'), 'kept b');
    unlinkSync(join(d, '.fuse_hidden_mine'));
    assert.deepEqual(names(d), ['.fuse_hidden0000001200000001']);
  });

  it('rename over a file that is open elsewhere: the open file keeps its content, the name gets the new one', async () => {
    const d = fresh();
    writeFileSync(join(d, 'target'), 'old target');
    writeFileSync(join(d, 'source'), 'new content');
    const fd = openSync(join(d, 'target'), 'r+');
    renameSync(join(d, 'source'), join(d, 'target'));
    assert.deepEqual(names(d), ['target']);
    assert.equal(readFileSync(join(d, 'target'), 'utf8'), 'new content');
    assert.equal(readAt(fd, 0, 100).toString(), 'old target');
    writeSync(fd, 'OLD', 0);
    assert.equal(readAt(fd, 0, 100).toString(), 'OLD target');
    assert.equal(readFileSync(join(d, 'target'), 'utf8'), 'new content');
    assert.equal(fstatSync(fd).nlink, 0);
    closeSync(fd);
    assert.ok(await eventually(() => openHandles(m) === 0));
    assert.deepEqual(names(d), ['target']);
  });

  it('rename between two names of one file does nothing, also when the target name is open (libfuse hides it first)', async () => {
    const d = fresh();
    writeFileSync(join(d, 'a'), 'one file');
    linkSync(join(d, 'a'), join(d, 'b'));
    const ino = statSync(join(d, 'a')).ino;
    const fd = openSync(join(d, 'b'), 'r+');
    renameSync(join(d, 'a'), join(d, 'b'));
    assert.deepEqual(names(d), ['a', 'b'], 'POSIX: both names stay');
    assert.equal(statSync(join(d, 'a')).ino, ino);
    assert.equal(statSync(join(d, 'b')).ino, ino);
    assert.equal(statSync(join(d, 'a')).nlink, 2);
    writeSync(fd, 'ONE', 0);
    assert.equal(readFileSync(join(d, 'a'), 'utf8'), 'ONE file', 'the open descriptor still writes the same file');
    closeSync(fd);
    assert.ok(await eventually(() => openHandles(m) === 0));
    assert.deepEqual(names(d), ['a', 'b']);
    assert.equal(statSync(join(d, 'b')).nlink, 2);
    // Not open: the kernel's own check is not reached either (each name is its own kernel inode).
    renameSync(join(d, 'b'), join(d, 'a'));
    assert.deepEqual(names(d), ['a', 'b']);
  });

  it('files a non-root user creates belong to that user (the FUSE caller\'s uid and gid); root\'s chown is kept', () => {
    const d = fresh();
    chmodSync(d, 0o1777);
    const out = nodeAs(`
      fs.writeFileSync(path.join(dir, 'by-nobody'), 'x', { mode: 0o640 });
      fs.mkdirSync(path.join(dir, 'dir-by-nobody'));
      fs.symlinkSync('by-nobody', path.join(dir, 'link-by-nobody'));
      const s = fs.statSync(path.join(dir, 'by-nobody'));
      return { uid: s.uid, gid: s.gid, mode: s.mode & 0o7777, chownAway: errnoOf(() => fs.chownSync(path.join(dir, 'by-nobody'), 0, 0)) };`, d);
    assert.deepEqual(out, { uid: NOBODY, gid: NOBODY, mode: 0o640, chownAway: 'EPERM' });
    const ids = (name: string): [number, number] => owner(join(d, name));
    assert.deepEqual([ids('by-nobody'), ids('dir-by-nobody'), ids('link-by-nobody')], [[NOBODY, NOBODY], [NOBODY, NOBODY], [NOBODY, NOBODY]]);
    writeFileSync(join(d, 'by-root'), 'r');
    assert.deepEqual(ids('by-root'), [0, 0]);
    chownSync(join(d, 'by-nobody'), 4321, 8765);
    assert.deepEqual(ids('by-nobody'), [4321, 8765]);
    // A write by root does not change the owner; the sticky directory stops nobody removing it.
    writeFileSync(join(d, 'by-nobody'), 'rewritten');
    assert.deepEqual(ids('by-nobody'), [4321, 8765]);
    assert.equal(nodeAs(`return errnoOf(() => fs.unlinkSync(path.join(dir, 'by-root')));`, d), 'EPERM');
  });

  it('a set-group-ID directory gives new entries its group, and new directories the bit, for root and for others', () => {
    const d = fresh();
    const shared = join(d, 'shared');
    mkdirSync(shared);
    chownSync(shared, 0, 1234);
    chmodSync(shared, 0o2777);
    writeFileSync(join(shared, 'by-root'), 'x');
    mkdirSync(join(shared, 'sub-by-root'), 0o755);
    nodeAs(`
      fs.writeFileSync(path.join(dir, 'by-nobody'), 'x');
      fs.mkdirSync(path.join(dir, 'sub-by-nobody'), 0o755);
      fs.symlinkSync('by-nobody', path.join(dir, 'link-by-nobody'));`, shared);
    const of = (name: string): string => {
      const s = lstatSync(join(shared, name));
      return `${s.uid}:${s.gid} ${(s.mode & 0o7777).toString(8)}`;
    };
    assert.deepEqual(
      ['by-root', 'sub-by-root', 'by-nobody', 'sub-by-nobody', 'link-by-nobody'].map(of),
      ['0:1234 644', '0:1234 2755', `${NOBODY}:1234 644`, `${NOBODY}:1234 2755`, `${NOBODY}:1234 777`],
    );
    // Without the bit, the creator's group.
    chmodSync(shared, 0o777);
    nodeAs(`fs.writeFileSync(path.join(dir, 'plain'), 'x');`, shared);
    assert.equal(of('plain'), `${NOBODY}:${NOBODY} 644`);
  });

  it('names are UTF-8: any name valid in UTF-8 round-trips; a name of other bytes is refused (EILSEQ), never stored as another', () => {
    const d = fresh();
    const odd = ['名前 with space', 'new\nline', 'tab\tand\\backslash', 'emoji 🙂', ' leading space', '-dash', '#', 'caf\ufffd'];
    for (const name of odd) writeFileSync(join(d, name), name);
    assert.deepEqual(names(d), [...odd].sort());
    for (const name of odd) assert.equal(readFileSync(join(d, name), 'utf8'), name);
    // fuse-native hands paths to JS as UTF-8 strings: an invalid byte would arrive as U+FFFD and
    // two such names would be one file. The binding refuses them (FUSE.md).
    const sub = join(d, 'bytes');
    mkdirSync(sub);
    const bad = Buffer.concat([Buffer.from(`${sub}/a`), Buffer.from([0xff])]);
    assert.equal(errnoOf(() => writeFileSync(bad, 'first')), 'EILSEQ');
    assert.equal(errnoOf(() => readFileSync(bad)), 'ENOENT');
    assert.deepEqual(readdirSync(sub), []);
  });

  it('mmap: a shared mapping reads the file and its writes reach the file', () => {
    const d = fresh();
    const p = join(d, 'mapped');
    const content = Buffer.from('0123456789'.repeat(1000));
    writeFileSync(p, content);
    const out = py(`
import json, mmap
with open('mapped', 'r+b') as f:
    m = mmap.mmap(f.fileno(), 0)
    first = m[:10].decode()
    last = m[-5:].decode()
    m[0:5] = b'HELLO'
    m[9000:9003] = b'XYZ'
    m.flush()
    m.close()
print(json.dumps([first, last]))`, d);
    assert.deepEqual(out, ['0123456789', '56789']);
    const expected = Buffer.from(content);
    expected.write('HELLO', 0);
    expected.write('XYZ', 9000);
    assert.ok(readFileSync(p).equals(expected), 'the mapped writes are in the file');
    // A private mapping's writes do not reach the file.
    py(`
import mmap
with open('mapped', 'r+b') as f:
    m = mmap.mmap(f.fileno(), 0, flags=mmap.MAP_PRIVATE)
    m[0:5] = b'xxxxx'
    m.close()
print('null')`, d);
    assert.ok(readFileSync(p).equals(expected));
  });

  it('mmap of a file opened with O_APPEND: the mapped writes land where they were made, not at the end', () => {
    const d = fresh();
    const p = join(d, 'counter');
    writeFileSync(p, Buffer.alloc(8192, 0x2e));
    // The kernel writes the pages back through a writable handle, the O_APPEND one here (FUSE.md).
    py(`
import mmap
with open('counter', 'a+b') as f:
    m = mmap.mmap(f.fileno(), 8192)
    m[0:8] = b'COUNTER1'
    m[4096:4100] = b'PAGE'
    m.flush()
    m.close()
    f.write(b'tail')
print('null')`, d);
    const expected = Buffer.alloc(8192, 0x2e);
    expected.write('COUNTER1', 0);
    expected.write('PAGE', 4096);
    assert.ok(readFileSync(p).equals(Buffer.concat([expected, Buffer.from('tail')])), 'the mapped writes at their offsets, the write(2) at the end');
  });

  it('a write through one descriptor is read at once through another, and O_RDWR sees its own writes', () => {
    const d = fresh();
    const p = join(d, 'f');
    const w = openSync(p, 'w');
    const r = openSync(p, 'r');
    writeSync(w, 'abc');
    assert.equal(readAt(r, 0, 10).toString(), 'abc');
    writeSync(w, 'def');
    assert.equal(readAt(r, 0, 10).toString(), 'abcdef');
    closeSync(w);
    closeSync(r);
  });

  it('a rename of an open directory keeps its handle working', () => {
    const d = fresh();
    mkdirSync(join(d, 'a'));
    writeFileSync(join(d, 'a', 'f'), 'x');
    const fd = openSync(join(d, 'a'), 'r');
    renameSync(join(d, 'a'), join(d, 'b'));
    assert.deepEqual(readdirSync(join(d, 'b')), ['f']);
    assert.equal(fstatSync(fd).isDirectory(), true);
    closeSync(fd);
  });
});
