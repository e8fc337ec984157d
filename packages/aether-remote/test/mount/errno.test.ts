// Issue 5: the errno of every failure, through a real mount (a child `aether mount`).
import assert from 'node:assert/strict';
import {
  chmodSync,
  closeSync,
  constants,
  linkSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmdirSync,
  statSync,
  symlinkSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startMount, type MountProcess } from './harness.js';
import { errnoOf, eventually, nodeAs, openToOthers, py, PY_ERR, stopAndClean } from './posix-helpers.js';

const { O_CREAT, O_EXCL, O_WRONLY, O_RDWR, O_RDONLY, O_DIRECTORY } = constants;

describe('errno of failed operations through a real mount', () => {
  let m: MountProcess;
  let d: string;
  /** [what was tried, errno] for a list of attempts: one assertion shows every mismatch at once. */
  const expectAll = (cases: [string, () => unknown, string][]): void => {
    assert.deepEqual(cases.map(([what, fn]) => `${what}: ${errnoOf(fn)}`), cases.map(([what, , errno]) => `${what}: ${errno}`));
  };

  before(async () => {
    m = await startMount({ args: ['--allow-other'] });
    openToOthers(m);
    d = m.mnt;
    mkdirSync(join(d, 'dir'));
    mkdirSync(join(d, 'full'));
    writeFileSync(join(d, 'full', 'x'), 'x');
    writeFileSync(join(d, 'file'), 'content');
    symlinkSync('dir', join(d, 'ldir'));
    symlinkSync('nowhere', join(d, 'dangling'));
  });
  after(() => stopAndClean(m));

  it('ENOENT: a missing name, for every operation that looks one up', () => {
    const p = join(d, 'missing');
    expectAll([
      ['stat', () => statSync(p), 'ENOENT'],
      ['open', () => openSync(p, 'r'), 'ENOENT'],
      ['open in a missing directory with O_CREAT', () => openSync(join(p, 'f'), 'w'), 'ENOENT'],
      ['mkdir in a missing directory', () => mkdirSync(join(p, 'sub')), 'ENOENT'],
      ['unlink', () => unlinkSync(p), 'ENOENT'],
      ['rmdir', () => rmdirSync(p), 'ENOENT'],
      ['rename from', () => renameSync(p, join(d, 'other')), 'ENOENT'],
      ['rename into a missing directory', () => renameSync(join(d, 'file'), join(p, 'file')), 'ENOENT'],
      ['link from', () => linkSync(p, join(d, 'other')), 'ENOENT'],
      ['symlink in a missing directory', () => symlinkSync('x', join(p, 'l')), 'ENOENT'],
      ['readlink', () => readlinkSync(p), 'ENOENT'],
      ['chmod', () => chmodSync(p, 0o644), 'ENOENT'],
      ['truncate', () => truncateSync(p, 0), 'ENOENT'],
      ['readdir', () => readdirSync(p), 'ENOENT'],
      ['stat through a dangling symlink', () => statSync(join(d, 'dangling')), 'ENOENT'],
    ]);
    assert.deepEqual(readdirSync(d).sort(), ['dangling', 'dir', 'file', 'full', 'ldir']);
  });

  it('EEXIST: mkdir over an existing name, O_CREAT|O_EXCL, link and symlink onto an existing name', () => {
    expectAll([
      ['mkdir over a directory', () => mkdirSync(join(d, 'dir')), 'EEXIST'],
      ['mkdir over a file', () => mkdirSync(join(d, 'file')), 'EEXIST'],
      ['mkdir over a dangling symlink', () => mkdirSync(join(d, 'dangling')), 'EEXIST'],
      ['O_CREAT|O_EXCL on a file', () => openSync(join(d, 'file'), O_CREAT | O_EXCL | O_WRONLY), 'EEXIST'],
      ['O_CREAT|O_EXCL on a dangling symlink', () => openSync(join(d, 'dangling'), O_CREAT | O_EXCL | O_WRONLY), 'EEXIST'],
      ['link onto a file', () => linkSync(join(d, 'file'), join(d, 'full', 'x')), 'EEXIST'],
      ['link onto a directory', () => linkSync(join(d, 'file'), join(d, 'dir')), 'EEXIST'],
      ['symlink onto a file', () => symlinkSync('t', join(d, 'file')), 'EEXIST'],
      ['symlink onto a symlink', () => symlinkSync('t', join(d, 'ldir')), 'EEXIST'],
    ]);
    assert.equal(readFileSync(join(d, 'file'), 'utf8'), 'content');
    assert.equal(readFileSync(join(d, 'full', 'x'), 'utf8'), 'x');
    assert.equal(readlinkSync(join(d, 'ldir')), 'dir');
  });

  it('ENOTEMPTY: rmdir of a non-empty directory, rename of a directory over a non-empty one', () => {
    mkdirSync(join(d, 'src'));
    expectAll([
      ['rmdir', () => rmdirSync(join(d, 'full')), 'ENOTEMPTY'],
      ['rename over it', () => renameSync(join(d, 'src'), join(d, 'full')), 'ENOTEMPTY'],
    ]);
    assert.deepEqual(readdirSync(join(d, 'full')), ['x']);
    rmdirSync(join(d, 'src'));
  });

  it('EISDIR: open a directory for writing, unlink a directory, rename a file over a directory, truncate a directory', () => {
    expectAll([
      ['open O_WRONLY', () => openSync(join(d, 'dir'), O_WRONLY), 'EISDIR'],
      ['open O_RDWR', () => openSync(join(d, 'dir'), O_RDWR), 'EISDIR'],
      ['open O_CREAT on a directory', () => openSync(join(d, 'dir'), O_CREAT | O_WRONLY), 'EISDIR'],
      ['unlink', () => unlinkSync(join(d, 'dir')), 'EISDIR'],
      ['rename a file over it', () => renameSync(join(d, 'file'), join(d, 'dir')), 'EISDIR'],
      ['truncate', () => truncateSync(join(d, 'dir'), 0), 'EISDIR'],
      ['read', () => readFileSync(join(d, 'dir')), 'EISDIR'],
    ]);
    assert.equal(statSync(join(d, 'dir')).isDirectory(), true);
    assert.equal(readFileSync(join(d, 'file'), 'utf8'), 'content');
  });

  it('ENOTDIR: a path through a file, rmdir of a file, rename of a directory over a file, opendir of a file', () => {
    expectAll([
      ['stat through a file', () => statSync(join(d, 'file', 'x')), 'ENOTDIR'],
      ['create through a file', () => openSync(join(d, 'file', 'x'), 'w'), 'ENOTDIR'],
      ['mkdir through a file', () => mkdirSync(join(d, 'file', 'x')), 'ENOTDIR'],
      ['rmdir a file', () => rmdirSync(join(d, 'file')), 'ENOTDIR'],
      ['rmdir a symlink to a directory', () => rmdirSync(join(d, 'ldir')), 'ENOTDIR'],
      ['rename a directory over a file', () => renameSync(join(d, 'dir'), join(d, 'file')), 'ENOTDIR'],
      ['readdir a file', () => readdirSync(join(d, 'file')), 'ENOTDIR'],
      ['open a file with O_DIRECTORY', () => openSync(join(d, 'file'), O_RDONLY | O_DIRECTORY), 'ENOTDIR'],
    ]);
    assert.equal(statSync(join(d, 'file')).isFile(), true);
  });

  it('ENAMETOOLONG: a 256-byte name, for every operation; 255 bytes is fine', () => {
    const long = join(d, 'n'.repeat(256));
    expectAll([
      ['stat', () => statSync(long), 'ENAMETOOLONG'],
      ['open', () => openSync(long, 'r'), 'ENAMETOOLONG'],
      ['unlink', () => unlinkSync(long), 'ENAMETOOLONG'],
      ['stat below it', () => statSync(join(long, 'f')), 'ENAMETOOLONG'],
      ['create', () => writeFileSync(long, 'x'), 'ENAMETOOLONG'],
      ['mkdir', () => mkdirSync(long), 'ENAMETOOLONG'],
      ['symlink', () => symlinkSync('file', long), 'ENAMETOOLONG'],
      ['link', () => linkSync(join(d, 'file'), long), 'ENAMETOOLONG'],
      ['rename to', () => renameSync(join(d, 'file'), long), 'ENAMETOOLONG'],
      // Multi-byte: 128 two-byte characters are 256 bytes.
      ['create, UTF-8', () => writeFileSync(join(d, 'é'.repeat(128)), 'x'), 'ENAMETOOLONG'],
    ]);
    const ok = join(d, 'n'.repeat(255));
    writeFileSync(ok, 'fine');
    assert.equal(readFileSync(ok, 'utf8'), 'fine');
    unlinkSync(ok);
    assert.deepEqual(readdirSync(d).sort(), ['dangling', 'dir', 'file', 'full', 'ldir']);
  });

  it('EILSEQ: a name or link target that is not UTF-8 cannot be made (two such names were one file); none can be found', () => {
    // Node passes Buffers through as bytes: 0xe9 alone is Latin-1 é, not UTF-8.
    const bad = (name: string): Buffer => Buffer.concat([Buffer.from(`${d}/${name}`), Buffer.from([0xe9])]);
    expectAll([
      ['create', () => writeFileSync(bad('x'), 'one'), 'EILSEQ'],
      ['mkdir', () => mkdirSync(bad('d')), 'EILSEQ'],
      ['symlink named so', () => symlinkSync('file', bad('l')), 'EILSEQ'],
      ['symlink to such a target', () => symlinkSync(Buffer.from([0x74, 0xe9]), join(d, 'l')), 'EILSEQ'],
      ['rename to', () => renameSync(join(d, 'file'), bad('f')), 'EILSEQ'],
      ['link', () => linkSync(join(d, 'file'), bad('f')), 'EILSEQ'],
      ['stat', () => statSync(bad('x')), 'ENOENT'],
      ['open', () => openSync(bad('x'), 'r'), 'ENOENT'],
      ['unlink', () => unlinkSync(bad('x')), 'ENOENT'],
      ['rename from', () => renameSync(bad('x'), join(d, 'y')), 'ENOENT'],
      ['create in a directory made through the mount', () => writeFileSync(Buffer.concat([Buffer.from(`${d}/dir/`), Buffer.from([0xe8])]), 'x'), 'EILSEQ'],
    ]);
    // A real U+FFFD is UTF-8 and an ordinary name; a Latin-1 name does not find it.
    writeFileSync(join(d, 'caf\ufffd'), 'replacement character');
    assert.equal(errnoOf(() => statSync(bad('caf'))), 'ENOENT');
    assert.equal(readFileSync(join(d, 'caf\ufffd'), 'utf8'), 'replacement character');
    unlinkSync(join(d, 'caf\ufffd'));
    assert.deepEqual(readdirSync(d).sort(), ['dangling', 'dir', 'file', 'full', 'ldir']);
    assert.equal(readFileSync(join(d, 'file'), 'utf8'), 'content');
  });

  it('EINVAL: a directory renamed into its own subtree; readlink of a file', () => {
    mkdirSync(join(d, 'a', 'b', 'c'), { recursive: true });
    expectAll([
      ['rename into its child', () => renameSync(join(d, 'a'), join(d, 'a', 'b', 'a')), 'EINVAL'],
      ['rename into a grandchild', () => renameSync(join(d, 'a'), join(d, 'a', 'b', 'c', 'a')), 'EINVAL'],
      ['rename over its own child', () => renameSync(join(d, 'a'), join(d, 'a', 'b')), 'EINVAL'],
      ['readlink of a file', () => readlinkSync(join(d, 'file')), 'EINVAL'],
    ]);
    assert.deepEqual(readdirSync(join(d, 'a', 'b')), ['c']);
    rmdirSync(join(d, 'a', 'b', 'c'));
    rmdirSync(join(d, 'a', 'b'));
    rmdirSync(join(d, 'a'));
  });

  it('EPERM, ELOOP, EBADF: a hard link to a directory, a symlink loop, writing a read-only descriptor', () => {
    symlinkSync('loop2', join(d, 'loop1'));
    symlinkSync('loop1', join(d, 'loop2'));
    const fd = openSync(join(d, 'file'), 'r');
    try {
      expectAll([
        ['link to a directory', () => linkSync(join(d, 'dir'), join(d, 'dir2')), 'EPERM'],
        ['stat through a loop', () => statSync(join(d, 'loop1')), 'ELOOP'],
        ['write to an O_RDONLY descriptor', () => writeSync(fd, 'x'), 'EBADF'],
      ]);
    } finally {
      closeSync(fd);
    }
    unlinkSync(join(d, 'loop1'));
    unlinkSync(join(d, 'loop2'));
  });

  it('ENOTSUP: special files (FIFOs, sockets, devices) cannot be made; mknod of a regular file works', () => {
    const out = py(`${PY_ERR}
import stat
print(json.dumps([err(lambda: os.mkfifo('fifo')), err(lambda: os.mknod('sock', stat.S_IFSOCK | 0o644)),
                  err(lambda: os.mknod('chr', stat.S_IFCHR | 0o644, os.makedev(1, 3))), err(lambda: os.mknod('reg', stat.S_IFREG | 0o640)),
                  err(lambda: os.mkfifo('dir/fifo')), err(lambda: os.mkfifo('missing/fifo'))]))`, d);
    assert.deepEqual(out, ['ENOTSUP', 'ENOTSUP', 'ENOTSUP', 'ok', 'ENOTSUP', 'ENOENT']);
    const s = statSync(join(d, 'reg'));
    assert.deepEqual([s.isFile(), s.mode & 0o7777, s.size], [true, 0o640, 0]);
    unlinkSync(join(d, 'reg'));
    assert.deepEqual(readdirSync(d).sort(), ['dangling', 'dir', 'file', 'full', 'ldir']);
  });

  it('EFBIG: a write or truncation past 2^53 - 1 bytes (Aether keeps sizes exact in JS numbers)', () => {
    const out = py(`${PY_ERR}
fd = os.open('huge', os.O_CREAT | os.O_RDWR, 0o644)
r = [err(lambda: os.pwrite(fd, b'xy', 2**53 - 2)), err(lambda: os.pwrite(fd, b'x', 2**60)), err(lambda: os.ftruncate(fd, 2**53)),
     os.pwrite(fd, b'x', 2**53 - 2), os.fstat(fd).st_size]
os.close(fd)
os.unlink('huge')
print(json.dumps(r))`, d);
    assert.deepEqual(out, ['EFBIG', 'EFBIG', 'EFBIG', 1, 2 ** 53 - 1]);
  });

  it('EACCES and EPERM for a user that is not root (allow_other with default_permissions)', () => {
    mkdirSync(join(d, 'priv'), 0o755);
    writeFileSync(join(d, 'priv', 'secret'), 'root only', { mode: 0o600 });
    writeFileSync(join(d, 'priv', 'public'), 'anyone may read');
    chmodSync(join(d, 'priv', 'public'), 0o644);
    mkdirSync(join(d, 'closed'), 0o700);
    writeFileSync(join(d, 'closed', 'f'), 'x');
    const out = nodeAs(`
      const p = (n) => path.join(dir, n);
      return {
        readSecret: errnoOf(() => fs.readFileSync(p('priv/secret'))),
        readPublic: fs.readFileSync(p('priv/public'), 'utf8'),
        writePublic: errnoOf(() => fs.openSync(p('priv/public'), 'r+')),
        createInRootDir: errnoOf(() => fs.writeFileSync(p('priv/mine'), 'x')),
        mkdirInRootDir: errnoOf(() => fs.mkdirSync(p('priv/sub'))),
        unlinkInRootDir: errnoOf(() => fs.unlinkSync(p('priv/public'))),
        renameInRootDir: errnoOf(() => fs.renameSync(p('priv/public'), p('priv/moved'))),
        symlinkInRootDir: errnoOf(() => fs.symlinkSync('x', p('priv/l'))),
        traverseClosed: errnoOf(() => fs.statSync(p('closed/f'))),
        listClosed: errnoOf(() => fs.readdirSync(p('closed'))),
        chmodRootFile: errnoOf(() => fs.chmodSync(p('priv/public'), 0o666)),
        chownRootFile: errnoOf(() => fs.chownSync(p('priv/public'), 65534, 65534)),
        utimesRootFile: errnoOf(() => fs.utimesSync(p('priv/public'), 1, 1)),
        // utimensat(UTIME_NOW, UTIME_NOW) needs write permission only; Node cannot ask for it.
        touchNowRootFile: require('node:child_process').execFileSync('/usr/bin/python3', ['-c',
          'import errno, os, sys\\ntry:\\n  os.utime(sys.argv[1])\\n  print("ok")\\nexcept OSError as e:\\n  print(errno.errorcode[e.errno])', p('priv/public')],
          { encoding: 'utf8' }).trim(),
      };`, d);
    assert.deepEqual(out, {
      readSecret: 'EACCES',
      readPublic: 'anyone may read',
      writePublic: 'EACCES',
      createInRootDir: 'EACCES',
      mkdirInRootDir: 'EACCES',
      unlinkInRootDir: 'EACCES',
      renameInRootDir: 'EACCES',
      symlinkInRootDir: 'EACCES',
      traverseClosed: 'EACCES',
      listClosed: 'EACCES',
      chmodRootFile: 'EPERM',
      chownRootFile: 'EPERM',
      utimesRootFile: 'EPERM',
      touchNowRootFile: 'EACCES',
    });
    assert.deepEqual(readdirSync(join(d, 'priv')).sort(), ['public', 'secret']);
    const s = statSync(join(d, 'priv', 'public'));
    assert.deepEqual([s.mode & 0o7777, s.uid, s.gid], [0o644, 0, 0]);
  });
});

describe('ENOSPC: the dirty quota, through a real mount', () => {
  const QUOTA_BYTES = 65536;
  const CHUNK_BYTES = 4096;
  let m: MountProcess;
  before(async () => {
    m = await startMount({ env: { AFS_AETHER_CACHE_DIRTY_MAX_BYTES: String(QUOTA_BYTES), AFS_AETHER_CACHE_DIRTY_HIGH_WATER_BYTES: '0' } });
  });
  after(() => stopAndClean(m));

  const chunk = (i: number): Buffer => Buffer.alloc(CHUNK_BYTES, 0x41 + (i % 26));

  it('a write past the quota fails with ENOSPC, nothing written before is lost, and writing works again once drained', async () => {
    const p = join(m.mnt, 'q');
    assert.equal(m.ctl(['sync', 'pause']).code, 0);
    const fd = openSync(p, 'w');
    let written = 0;
    let failure = 'ok';
    for (let i = 0; i < 2 * (QUOTA_BYTES / CHUNK_BYTES) && failure === 'ok'; i++) {
      failure = errnoOf(() => (written += writeSync(fd, chunk(i))));
    }
    assert.deepEqual([failure, written], ['ENOSPC', QUOTA_BYTES]);
    // Rewriting bytes that are already dirty adds nothing: allowed. A new file's bytes are refused.
    assert.equal(writeSync(fd, chunk(0), 0, CHUNK_BYTES, 0), CHUNK_BYTES);
    assert.equal(errnoOf(() => writeFileSync(join(m.mnt, 'other'), 'x')), 'ENOSPC');
    // Namespace operations add no dirty bytes.
    mkdirSync(join(m.mnt, 'still-works'));
    closeSync(fd);
    const expected = Buffer.concat(Array.from({ length: QUOTA_BYTES / CHUNK_BYTES }, (_, i) => chunk(i)));
    assert.ok(readFileSync(p).equals(expected), 'every byte accepted before ENOSPC reads back');
    assert.equal(statSync(p).size, QUOTA_BYTES);

    assert.equal(m.ctl(['sync', 'resume']).code, 0);
    const drained = await eventually(() => {
      const s = JSON.parse(m.ctl(['status', '--json']).out) as { journal: { pending_entries: number } };
      return s.journal.pending_entries === 0;
    }, 15_000);
    assert.ok(drained, 'the journal drains after sync resume');
    const more = Buffer.alloc(40_000, 0x7a);
    writeFileSync(p, more, { flag: 'a' });
    assert.ok(readFileSync(p).equals(Buffer.concat([expected, more])));
    assert.equal(readFileSync(join(m.mnt, 'other'), 'utf8'), '', 'the refused write left an empty file');
  });
});
