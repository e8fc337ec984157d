// Issue 5: every FUSE operation Aether serves, through a real mount (a child `aether mount`).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  appendFileSync,
  chmodSync,
  chownSync,
  closeSync,
  fdatasyncSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  readSync,
  renameSync,
  rmdirSync,
  statfsSync,
  statSync,
  symlinkSync,
  truncateSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startMount, type MountProcess } from './harness.js';
import { errnoOf, eventually, freshDirs, metrics, opCount, openHandles, owner, py, PY_ERR, sh, stopAndClean } from './posix-helpers.js';

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;

describe('POSIX operations through a real mount', () => {
  let m: MountProcess;
  let dir: string;
  const fresh = freshDirs(() => m, 't');

  before(async () => {
    m = await startMount();
    dir = m.mnt;
  });
  after(() => stopAndClean(m));

  it('lookup/getattr: type, mode, owner, size, nlink and a stable inode number', () => {
    const d = fresh();
    writeFileSync(join(d, 'f'), 'hello', { mode: 0o640 });
    const s = statSync(join(d, 'f'));
    assert.equal(s.mode & S_IFMT, S_IFREG);
    assert.equal(s.mode & 0o7777, 0o640);
    assert.deepEqual([s.uid, s.gid, s.size, s.nlink], [0, 0, 5, 1]);
    assert.equal(statSync(join(d, 'f')).ino, s.ino);
    assert.notEqual(s.ino, statSync(d).ino);
    const ds = statSync(d);
    assert.equal(ds.mode & S_IFMT, S_IFDIR);
    assert.equal(ds.nlink, 2);
    assert.equal(errnoOf(() => statSync(join(d, 'missing'))), 'ENOENT');
  });

  it('readdir lists exactly the names in the directory, with their types', () => {
    const d = fresh();
    writeFileSync(join(d, 'b'), '');
    mkdirSync(join(d, 'a'));
    symlinkSync('b', join(d, 'c'));
    assert.deepEqual(readdirSync(d).sort(), ['a', 'b', 'c']);
    const types = readdirSync(d, { withFileTypes: true }).map((e) => `${e.name}:${e.isDirectory() ? 'd' : e.isSymbolicLink() ? 'l' : e.isFile() ? 'f' : '?'}`);
    assert.deepEqual(types.sort(), ['a:d', 'b:f', 'c:l']);
    assert.deepEqual(readdirSync(join(d, 'a')), []);
    unlinkSync(join(d, 'b'));
    assert.deepEqual(readdirSync(d).sort(), ['a', 'c']);
    // Programs that list every entry see `.` and `..` too (Node's readdir leaves them out).
    assert.deepEqual(sh('ls -a', d).split('\n').filter(Boolean), ['.', '..', 'a', 'c']);
    assert.deepEqual(sh('ls -a a', d).split('\n').filter(Boolean), ['.', '..']);
  });

  it('readdir gives each entry its inode number and type (d_ino, d_type), as lstat does', () => {
    const d = fresh();
    writeFileSync(join(d, 'f'), '');
    mkdirSync(join(d, 's'));
    symlinkSync('f', join(d, 'l'));
    linkSync(join(d, 'f'), join(d, 'h'));
    // glibc's readdir(3) on x86-64: d_ino (8 bytes), d_off (8), d_reclen (2), d_type (1), d_name.
    const entries = py(`${PY_ERR}
class Dirent(ctypes.Structure):
    _fields_ = [('d_ino', ctypes.c_uint64), ('d_off', ctypes.c_int64), ('d_reclen', ctypes.c_ushort), ('d_type', ctypes.c_ubyte), ('d_name', ctypes.c_char * 256)]
libc = ctypes.CDLL(None, use_errno=True)
libc.opendir.restype = ctypes.c_void_p
libc.readdir.restype = ctypes.POINTER(Dirent)
libc.readdir.argtypes = [ctypes.c_void_p]
libc.closedir.argtypes = [ctypes.c_void_p]
h = libc.opendir(b'.')
out = {}
while True:
    e = libc.readdir(h)
    if not e: break
    out[e.contents.d_name.decode()] = [e.contents.d_ino, e.contents.d_type]
libc.closedir(h)
print(json.dumps(out))`, d) as Record<string, [number, number]>;
    const [DT_DIR, DT_REG, DT_LNK] = [4, 8, 10];
    const ino = (p: string): number => lstatSync(join(d, p)).ino;
    assert.deepEqual(entries, {
      '.': [ino('.'), DT_DIR],
      '..': [ino('..'), DT_DIR],
      f: [ino('f'), DT_REG],
      h: [ino('f'), DT_REG],
      s: [ino('s'), DT_DIR],
      l: [ino('l'), DT_LNK],
    });
    // Python's scandir takes DirEntry.inode() from d_ino; ls -i of a directory prints it too.
    const inParent = py(`import os, json; print(json.dumps({e.name: e.inode() for e in os.scandir('..')}))`, d) as Record<string, number>;
    assert.equal(inParent[d.split('/').pop()!], ino('.'));
    assert.match(sh('ls -i', d), new RegExp(`^ *${ino('f')} f$`, 'm'));
    // A directory's size is one block, as on ext4 (some programs take size 0 for empty).
    assert.deepEqual([statSync(join(d, 's')).size, statSync(join(d, 's')).blocks], [4096, 8]);
  });

  it('mkdir and rmdir: mode, the parent\'s link count and mtime', () => {
    const d = fresh();
    utimesSync(d, 1000, 1000);
    mkdirSync(join(d, 'sub'), 0o750);
    const s = statSync(join(d, 'sub'));
    assert.equal(s.mode & 0o7777, 0o750);
    assert.equal(statSync(d).nlink, 3);
    assert.ok(statSync(d).mtimeMs > 1_000_000, 'mkdir updates the parent\'s mtime');
    rmdirSync(join(d, 'sub'));
    assert.equal(errnoOf(() => statSync(join(d, 'sub'))), 'ENOENT');
    assert.equal(statSync(d).nlink, 2);
  });

  it('create, open, write, read: bytes come back exactly, at any offset', () => {
    const d = fresh();
    const p = join(d, 'f');
    const fd = openSync(p, 'wx', 0o600);
    assert.equal(writeSync(fd, Buffer.from('0123456789')), 10);
    assert.equal(writeSync(fd, Buffer.from('AB'), 0, 2, 4), 2);
    closeSync(fd);
    assert.equal(readFileSync(p, 'utf8'), '0123AB6789');
    assert.equal(statSync(p).mode & 0o777, 0o600);
    const r = openSync(p, 'r');
    const buf = Buffer.alloc(4);
    assert.equal(readSync(r, buf, 0, 4, 3), 4);
    assert.equal(buf.toString(), '3AB6');
    assert.equal(readSync(r, buf, 0, 4, 10), 0, 'read at end of file');
    closeSync(r);
    const big = Buffer.alloc(3 * 1024 * 1024 + 17);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7 + (i >> 12)) & 0xff;
    writeFileSync(join(d, 'big'), big);
    assert.ok(readFileSync(join(d, 'big')).equals(big));
  });

  it('truncate and ftruncate shrink and extend; the extension reads as zeros', () => {
    const d = fresh();
    const p = join(d, 'f');
    writeFileSync(p, 'abcdefgh');
    utimesSync(p, 1000, 1000);
    truncateSync(p, 3);
    assert.equal(readFileSync(p, 'utf8'), 'abc');
    assert.ok(statSync(p).mtimeMs > 1_000_000, 'truncate updates mtime');
    truncateSync(p, 6);
    assert.deepEqual(readFileSync(p), Buffer.from('abc\0\0\0'));
    const fd = openSync(p, 'r+');
    ftruncateSync(fd, 1);
    assert.equal(fstatSync(fd).size, 1);
    ftruncateSync(fd, 4);
    closeSync(fd);
    assert.deepEqual(readFileSync(p), Buffer.from('a\0\0\0'));
  });

  it('fallocate: mode 0 extends with zeros, KEEP_SIZE changes nothing, other modes answer EOPNOTSUPP, more than the disk has is ENOSPC', () => {
    const d = fresh();
    const p = join(d, 'f');
    writeFileSync(p, 'head');
    sh('fallocate -l 1048576 f', d);
    assert.equal(statSync(p).size, 1048576);
    const back = readFileSync(p);
    assert.equal(back.subarray(0, 4).toString(), 'head');
    assert.ok(back.subarray(4).every((b) => b === 0), 'the new part reads as zeros');
    sh('fallocate -l 4096 f', d);
    assert.equal(statSync(p).size, 1048576, 'never shrinks');
    sh('fallocate -n -o 0 -l 8388608 f', d);
    assert.equal(statSync(p).size, 1048576, 'KEEP_SIZE');
    // glibc's posix_fallocate asks mode 0 (and would write zeros itself if it were refused).
    assert.equal(py('import os\nfd = os.open("f", os.O_RDWR)\nos.posix_fallocate(fd, 2097152, 4096)\nprint(os.fstat(fd).st_size)', d), 2101248);
    for (const [flags, what] of [['-p -o 0 -l 4096', 'punch hole'], ['-z -o 0 -l 4096', 'zero range'], ['-c -o 0 -l 4096', 'collapse range']] as const) {
      assert.throws(() => sh(`fallocate ${flags} f`, d), (e: { stderr?: string }) => /Operation not supported|mode is unsupported/.test(e.stderr ?? ''), what);
    }
    const free = statfsSync(d).bavail * statfsSync(d).bsize;
    assert.throws(() => sh(`fallocate -l ${free + 1024 ** 3} big`, d), (e: { stderr?: string }) => /No space left on device/.test(e.stderr ?? ''));
    assert.equal(statSync(p).size, 2101248);
    assert.equal(statSync(join(d, 'big')).size, 0, 'the refused file is left as made');
  });

  it('unlink removes the name; the parent\'s listing and the file are gone', () => {
    const d = fresh();
    writeFileSync(join(d, 'f'), 'x');
    unlinkSync(join(d, 'f'));
    assert.deepEqual(readdirSync(d), []);
    assert.equal(errnoOf(() => statSync(join(d, 'f'))), 'ENOENT');
  });

  it('rename over an existing file replaces it atomically and keeps the source inode', () => {
    const d = fresh();
    writeFileSync(join(d, 'src'), 'new');
    writeFileSync(join(d, 'dst'), 'old-content');
    const ino = statSync(join(d, 'src')).ino;
    renameSync(join(d, 'src'), join(d, 'dst'));
    assert.deepEqual(readdirSync(d), ['dst']);
    assert.equal(readFileSync(join(d, 'dst'), 'utf8'), 'new');
    assert.equal(statSync(join(d, 'dst')).ino, ino);
    assert.equal(statSync(join(d, 'dst')).nlink, 1);
  });

  it('a file saved again and again by rename over its name, opened, stat-ed and read meanwhile by other processes: every call finds a whole version', () => {
    const d = fresh();
    writeFileSync(join(d, 'target'), 'version 0\n');
    writeFileSync(join(d, 'link-target'), 'x');
    symlinkSync('link-target', join(d, 'link'));
    // A writer saving the way editors, git and package managers do, and three readers by name
    // (open and read, stat, readlink of a symbolic link replaced the same way), each its own process.
    const result = py(
      `
import json, multiprocessing, os, time
def writer(stop):
    i = 0
    while not stop.is_set():
        i += 1
        with open('target.tmp', 'w') as f: f.write('version %d\\n' % i)
        os.rename('target.tmp', 'target')
        os.symlink('link-target', 'link.tmp'); os.rename('link.tmp', 'link')
        time.sleep(0.002)
def reader(kind, q):
    bad = {}; calls = 0; t = time.time() + 4
    while time.time() < t:
        calls += 1
        try:
            if kind == 'open':
                with open('target') as f: text = f.read()
                if not (text.startswith('version ') and text.endswith('\\n')): bad['torn'] = bad.get('torn', 0) + 1
            elif kind == 'stat': os.stat('target')
            else: os.readlink('link')
        except OSError as e:
            bad[e.strerror] = bad.get(e.strerror, 0) + 1
    q.put((kind, calls, bad))
stop = multiprocessing.Event(); q = multiprocessing.Queue()
w = multiprocessing.Process(target=writer, args=(stop,)); w.start()
rs = [multiprocessing.Process(target=reader, args=(k, q)) for k in ('open', 'stat', 'readlink')]
for r in rs: r.start()
out = [q.get() for _ in rs]
for r in rs: r.join()
stop.set(); w.join()
print(json.dumps(out))
`,
      d,
    ) as [string, number, Record<string, number>][];
    for (const [kind, calls, bad] of result) {
      assert.ok(calls > 100, `${kind}: only ${calls} calls`);
      // The kernel walks again once after ESTALE; a second save within that walk's round trips
      // reaches the program (FUSE.md "a node that lost its name"): rare, never ENOENT or torn.
      const { 'Stale file handle': stale = 0, ...other } = bad;
      assert.deepEqual(other, {}, `${kind}: ${JSON.stringify(bad)} in ${calls} calls`);
      assert.ok(stale <= calls / 1000, `${kind}: ${stale} ESTALE in ${calls} calls`);
    }
  });

  it('rename of a directory into another directory moves its subtree and fixes link counts', () => {
    const d = fresh();
    mkdirSync(join(d, 'a', 'x', 'y'), { recursive: true });
    writeFileSync(join(d, 'a', 'x', 'y', 'f'), 'deep');
    mkdirSync(join(d, 'b'));
    renameSync(join(d, 'a', 'x'), join(d, 'b', 'x2'));
    assert.deepEqual(readdirSync(join(d, 'a')), []);
    assert.equal(readFileSync(join(d, 'b', 'x2', 'y', 'f'), 'utf8'), 'deep');
    assert.deepEqual([statSync(join(d, 'a')).nlink, statSync(join(d, 'b')).nlink, statSync(d).nlink], [2, 3, 4]);
    // A file into another directory.
    writeFileSync(join(d, 'a', 'g'), 'g');
    renameSync(join(d, 'a', 'g'), join(d, 'b', 'g'));
    assert.deepEqual(readdirSync(join(d, 'b')).sort(), ['g', 'x2']);
    // A directory over an empty directory.
    mkdirSync(join(d, 'empty'));
    renameSync(join(d, 'b', 'x2'), join(d, 'empty'));
    assert.equal(readFileSync(join(d, 'empty', 'y', 'f'), 'utf8'), 'deep');
    assert.deepEqual([statSync(join(d, 'b')).nlink, statSync(d).nlink], [2, 5]);
  });

  it('renameat2: RENAME_NOREPLACE and RENAME_EXCHANGE answer what the kernel answers (FUSE.md), and nothing changes', () => {
    // libfuse 2.9 (protocol 7.19) has no RENAME2, so the flags never reach Aether: the kernel
    // answers EEXIST for an existing target (its own check), EINVAL otherwise. Documented in FUSE.md.
    const d = fresh();
    writeFileSync(join(d, 'a'), 'A');
    writeFileSync(join(d, 'b'), 'B');
    const out = py(`${PY_ERR}
libc = ctypes.CDLL(None, use_errno=True)
def r2(a, b, flags):
    if libc.renameat2(-100, a.encode(), -100, b.encode(), flags) != 0:
        raise OSError(ctypes.get_errno(), 'renameat2')
print(json.dumps([err(lambda: r2('a', 'b', 1)), err(lambda: r2('a', 'c', 1)), err(lambda: r2('a', 'b', 2))]))`, d);
    assert.deepEqual(out, ['EEXIST', 'EINVAL', 'EINVAL']);
    assert.deepEqual(readdirSync(d).sort(), ['a', 'b']);
    assert.deepEqual([readFileSync(join(d, 'a'), 'utf8'), readFileSync(join(d, 'b'), 'utf8')], ['A', 'B']);
  });

  it('symlink and readlink: lstat is a link of the target\'s length; stat follows it', () => {
    const d = fresh();
    writeFileSync(join(d, 'target'), 'pointed-to');
    symlinkSync('target', join(d, 'l'));
    symlinkSync('../nowhere/at/all', join(d, 'dangling'));
    const ls = lstatSync(join(d, 'l'));
    assert.equal(ls.mode & S_IFMT, S_IFLNK);
    assert.equal(ls.size, 'target'.length);
    assert.equal(readlinkSync(join(d, 'l')), 'target');
    assert.equal(readlinkSync(join(d, 'dangling')), '../nowhere/at/all');
    assert.equal(readFileSync(join(d, 'l'), 'utf8'), 'pointed-to');
    assert.equal(statSync(join(d, 'l')).ino, statSync(join(d, 'target')).ino);
    assert.equal(errnoOf(() => statSync(join(d, 'dangling'))), 'ENOENT');
    assert.equal(errnoOf(() => readlinkSync(join(d, 'target'))), 'EINVAL');
  });

  it('hard links: one inode number, link count, size, mode and times the same through every name at once', () => {
    const d = fresh();
    mkdirSync(join(d, 'sub'));
    const a = join(d, 'a');
    const b = join(d, 'b');
    const c = join(d, 'sub', 'c');
    writeFileSync(a, 'one');
    linkSync(a, b);
    linkSync(b, c);
    const names = [a, b, c];
    const view = (): string[] => names.map((p) => {
      const s = statSync(p);
      return `ino=${s.ino} nlink=${s.nlink} size=${s.size} mode=${(s.mode & 0o7777).toString(8)} mtime=${s.mtimeMs}`;
    });
    const same = (expectNlink: number, expectSize: number): void => {
      const v = view();
      assert.equal(new Set(v).size, 1, `every name shows the same attributes:\n${v.join('\n')}`);
      assert.match(v[0]!, new RegExp(`nlink=${expectNlink} size=${expectSize} `));
    };
    same(3, 3);
    // Written through one name, read through the others (size from the other names' own lookups).
    writeFileSync(b, 'one-two', { flag: 'r+' });
    same(3, 7);
    const fd = openSync(c, 'a');
    writeSync(fd, '-three');
    closeSync(fd);
    same(3, 13);
    assert.equal(readFileSync(a, 'utf8'), 'one-two-three');
    chmodSync(c, 0o604);
    same(3, 13);
    utimesSync(b, 1234, 5678);
    same(3, 13);
    assert.equal(statSync(a).mtimeMs, 5_678_000);
    unlinkSync(b);
    names.splice(1, 1);
    same(2, 13);
    unlinkSync(a);
    names.splice(0, 1);
    same(1, 13);
    assert.equal(readFileSync(c, 'utf8'), 'one-two-three');
  });

  it('a name whose attributes the kernel cached with one link shows the new link count and size once the file gains a name: seconds later, and after its count went back to 1', async () => {
    const d = fresh();
    const p = (n: string): string => join(d, n);
    const seen = (n: string): string => {
      const s = statSync(p(n));
      return `nlink=${s.nlink} size=${s.size}`;
    };
    /** `cached` shows one link and the first line, then gains `added` (linked from itself) and a second line through it. */
    const gainsName = (cached: string, added: string): void => {
      assert.equal(seen(cached), 'nlink=1 size=6');
      linkSync(p(cached), p(added));
      appendFileSync(p(added), 'world\n');
      assert.equal(seen(cached), 'nlink=2 size=12');
      assert.equal(readFileSync(p(cached), 'utf8'), 'hello\nworld\n');
    };
    // Cached (60 s in local mode), then linked seconds later: the patched binding had noted only
    // names answered within the last 2 s.
    writeFileSync(p('a'), 'hello\n');
    assert.equal(seen('a'), 'nlink=1 size=6');
    await new Promise((r) => setTimeout(r, 2500));
    gainsName('a', 'b');
    // A second name removed, the first cached again with one link, then a new name.
    writeFileSync(p('x'), 'hello\n');
    linkSync(p('x'), p('y'));
    unlinkSync(p('y'));
    gainsName('x', 'z');
    // The first name removed: the second, cached with one link, linked again.
    writeFileSync(p('m'), 'hello\n');
    linkSync(p('m'), p('n'));
    unlinkSync(p('m'));
    gainsName('n', 'o');
  });

  it('chmod sets the permission bits (setuid, setgid, sticky included) and the change time', async () => {
    const d = fresh();
    const p = join(d, 'f');
    writeFileSync(p, 'x');
    const before = statSync(p).ctimeMs;
    await new Promise((r) => setTimeout(r, 20));
    chmodSync(p, 0o4751);
    assert.equal(statSync(p).mode & 0o7777, 0o4751);
    assert.ok(statSync(p).ctimeMs > before, 'chmod updates ctime');
    chmodSync(d, 0o1777);
    assert.equal(statSync(d).mode & 0o7777, 0o1777);
  });

  it('chown sets uid and gid; -1 leaves one alone; lchown changes the link, not its target', () => {
    const d = fresh();
    const p = join(d, 'f');
    writeFileSync(p, 'x');
    chownSync(p, 1234, 5678);
    assert.deepEqual(owner(p), [1234, 5678]);
    chownSync(p, -1, 42);
    assert.deepEqual(owner(p), [1234, 42]);
    chownSync(p, 7, -1);
    assert.deepEqual(owner(p), [7, 42]);
    symlinkSync('f', join(d, 'l'));
    sh('chown -h 99:98 l', d);
    assert.deepEqual(owner(join(d, 'l')), [99, 98]);
    assert.deepEqual(owner(p), [7, 42]);
  });

  it('utimens sets atime and mtime each to its own value; touch -m and touch -a leave the other alone', () => {
    const d = fresh();
    const p = join(d, 'f');
    writeFileSync(p, 'x');
    utimesSync(p, 1_000_000_000, 1_500_000_000);
    assert.deepEqual([statSync(p).atimeMs, statSync(p).mtimeMs], [1_000_000_000_000, 1_500_000_000_000]);
    sh('touch -m -d @1600000000 f', d);
    assert.deepEqual([statSync(p).atimeMs, statSync(p).mtimeMs], [1_000_000_000_000, 1_600_000_000_000]);
    sh('touch -a -d @1700000000 f', d);
    assert.deepEqual([statSync(p).atimeMs, statSync(p).mtimeMs], [1_700_000_000_000, 1_600_000_000_000]);
    // Plain touch: both to now.
    const t0 = Date.now();
    sh('touch f', d);
    const s = statSync(p);
    assert.ok(s.atimeMs >= t0 - 1000 && s.atimeMs <= Date.now() + 1000, `atime ${s.atimeMs} is now`);
    assert.equal(s.atimeMs, s.mtimeMs);
    // Times travel in whole milliseconds (FUSE.md, fuse-native limit): sub-ms digits are dropped.
    sh('touch -m -d @1600000000.123456789 f', d);
    assert.equal(statSync(p).mtimeMs, 1_600_000_000_123);
  });

  it('times before 1970 are kept (touch -d 1969, tar x and cp -p of old files), to the millisecond, and after a restart', async () => {
    const d = fresh();
    const src = join(m.stateDir, '..', 'old-src');
    mkdirSync(src, { recursive: true });
    writeFileSync(join(src, 'moon'), 'apollo');
    sh(`touch -d '1969-07-20 20:17:40 UTC' '${src}/moon'`, d);
    sh(`tar cf '${src}.tar' -C '${src}' moon && tar xf '${src}.tar' && cp -p '${src}/moon' moon-copy`, d);
    writeFileSync(join(d, 'f'), 'x');
    sh("touch -d '1969-12-31 23:59:59.5 UTC' f", d);
    const want = { moon: -14182940000, 'moon-copy': -14182940000, f: -500 };
    const mtimes = (): Record<string, number> => Object.fromEntries(Object.keys(want).map((n) => [n, statSync(join(d, n)).mtimeMs]));
    assert.deepEqual(mtimes(), want);
    await m.kill9();
    m = await startMount({ mnt: m.mnt, stateDir: m.stateDir });
    assert.deepEqual(mtimes(), want, 'after kill -9 and a restart');
  });

  it('timestamps: data changes move mtime and ctime, metadata changes ctime only, reads neither', async () => {
    const d = fresh();
    const f = join(d, 'f');
    writeFileSync(f, 'abc');
    mkdirSync(join(d, 'sub'));
    const OLD_MS = 1_000_000_000_000;
    const times = (p: string): string => {
      const s = statSync(p);
      return `${s.mtimeMs === OLD_MS ? 'm=old' : 'm=new'} ${s.ctimeMs < stamp ? 'c=old' : 'c=new'}`;
    };
    let stamp = 0;
    const reset = async (): Promise<void> => {
      for (const p of [d, f, join(d, 'sub')]) utimesSync(p, OLD_MS / 1000, OLD_MS / 1000);
      await new Promise((r) => setTimeout(r, 5));
      stamp = Date.now();
      await new Promise((r) => setTimeout(r, 5));
    };
    await reset();
    readFileSync(f);
    readdirSync(d);
    assert.deepEqual([times(f), times(d)], ['m=old c=old', 'm=old c=old'], 'read, readdir');
    writeFileSync(f, 'x', { flag: 'r+' });
    assert.deepEqual([times(f), times(d)], ['m=new c=new', 'm=old c=old'], 'write');
    await reset();
    chmodSync(f, 0o600);
    assert.deepEqual([times(f), times(d)], ['m=old c=new', 'm=old c=old'], 'chmod');
    await reset();
    truncateSync(f, 1);
    assert.deepEqual(times(f), 'm=new c=new', 'truncate');
    await reset();
    linkSync(f, join(d, 'g'));
    assert.deepEqual([times(f), times(d)], ['m=old c=new', 'm=new c=new'], 'link');
    await reset();
    renameSync(join(d, 'g'), join(d, 'sub', 'g'));
    assert.deepEqual([times(f), times(d), times(join(d, 'sub'))], ['m=old c=new', 'm=new c=new', 'm=new c=new'], 'rename across directories');
    await reset();
    unlinkSync(join(d, 'sub', 'g'));
    assert.deepEqual([times(f), times(join(d, 'sub'))], ['m=old c=new', 'm=new c=new'], 'unlink of one name');
  });

  it('statfs: df -PT shows fuse.aether with the numbers of the state directory\'s file system', () => {
    const line = sh(`df -PT ${m.mnt}`, dir).split('\n')[1] ?? '';
    const [fsname, type, total] = line.split(/\s+/);
    assert.deepEqual([fsname, type], ['aether', 'fuse.aether']);
    const st = statfsSync(m.stateDir);
    assert.equal(Number(total), Math.floor((st.blocks * st.bsize) / 1024));
    const mt = statfsSync(m.mnt);
    assert.deepEqual([mt.bsize, mt.blocks, mt.files], [st.bsize, st.blocks, st.files]);
    assert.equal(sh(`stat -f -c %l ${m.mnt}`, dir).trim(), '255');
  });

  it('noatime, and said so in /proc/mounts: a read leaves the access time alone, touch -a sets it', () => {
    const opts = readFileSync('/proc/self/mounts', 'utf8').split('\n').find((l) => l.split(' ')[1] === m.mnt)?.split(' ')[3] ?? '';
    assert.ok(opts.split(',').includes('noatime'), opts);
    const f = join(fresh(), 'a');
    writeFileSync(f, 'x');
    sh(`touch -a -d 2001-01-01T00:00:00Z ${f}`, dir);
    assert.equal(readFileSync(f, 'utf8'), 'x');
    assert.equal(statSync(f).atime.toISOString(), '2001-01-01T00:00:00.000Z');
  });

  it('release after the last close, and the handle is gone; flush never reaches Aether (left to libfuse)', async () => {
    const d = fresh();
    const p = join(d, 'f');
    writeFileSync(p, 'x');
    assert.ok(await eventually(() => openHandles(m) === 0), 'no handle left open');
    const [open0, flush0, release0] = [await opCount(m, 'open'), await opCount(m, 'flush'), await opCount(m, 'release')];
    // No child process may start while the descriptor is open: its copy of the descriptor is
    // closed at exec, and that close is a flush too.
    const fd = openSync(p, 'r');
    closeSync(fd);
    const fd2 = openSync(p, 'r');
    closeSync(fd2);
    // flush has no handler: libfuse answers ENOSYS and the kernel stops sending it (fuse-ops.ts).
    assert.deepEqual([await opCount(m, 'open'), await opCount(m, 'flush')], [open0 + 2, flush0]);
    assert.equal(flush0, 0);
    assert.ok(await eventually(async () => (await opCount(m, 'release')) === release0 + 2), 'one release per open');
    assert.equal(openHandles(m), 0);
  });

  it('fsync, fdatasync and fsyncdir each flush the journal once (reason manual)', async () => {
    const d = fresh();
    const manual = async (): Promise<number> => (await metrics(m)).get('aether_journal_wal_flush_total{reason="manual",outcome="success"}') ?? -1;
    const fd = openSync(join(d, 'f'), 'w');
    writeSync(fd, 'data');
    const m0 = await manual();
    const [fsync0, fsyncdir0] = [await opCount(m, 'fsync'), await opCount(m, 'fsyncdir')];
    fsyncSync(fd);
    assert.equal(await manual(), m0 + 1);
    fdatasyncSync(fd);
    assert.equal(await manual(), m0 + 2);
    closeSync(fd);
    const dfd = openSync(d, 'r');
    fsyncSync(dfd);
    closeSync(dfd);
    assert.equal(await manual(), m0 + 3);
    assert.deepEqual([await opCount(m, 'fsync'), await opCount(m, 'fsyncdir')], [fsync0 + 2, fsyncdir0 + 1]);
  });

  it('extended attributes: set, get and remove answer ENOTSUP; a listing finds none, so tar --xattrs and rsync -X copy quietly', () => {
    const d = fresh();
    writeFileSync(join(d, 'f'), 'x');
    symlinkSync('f', join(d, 'l'));
    const out = py(`${PY_ERR}
def ls(p, follow=True):
    try: return os.listxattr(p, follow_symlinks=follow)
    except OSError as e: return errno.errorcode[e.errno]
print(json.dumps([err(lambda: os.setxattr('f', 'user.k', b'v')), err(lambda: os.getxattr('f', 'user.k')),
                  err(lambda: os.removexattr('f', 'user.k')), err(lambda: os.setxattr('.', 'user.k', b'v')),
                  ls('f'), ls('.'), ls('l', False), ls('missing')]))`, d);
    assert.deepEqual(out, ['ENOTSUP', 'ENOTSUP', 'ENOTSUP', 'ENOTSUP', [], [], [], 'ENOENT']);
    // Each file's listing failed before: tar warned once per file ("Cannot flistxattr").
    const tar = spawnSync('tar', ['--xattrs', '-cf', '-', '.'], { cwd: d });
    assert.equal(tar.status, 0, tar.stderr.toString());
    assert.equal(tar.stderr.toString(), '');
    assert.ok(tar.stdout.length >= 1024);
  });
});
