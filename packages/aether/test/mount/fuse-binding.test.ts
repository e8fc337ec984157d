/**
 * The patched fuse-native through FuseMount, against a memfs fixture mounted by a child process.
 * Each test pins a fact FUSE.md states; the utimens, create-flags and watchdog tests fail on an
 * unpatched binding.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, constants, mkdirSync, openSync, readFileSync, readSync, renameSync, statSync, unlinkSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AetherError, isAetherError } from '../../src/errors.js';
import { claimBindingAttrs, cleanStaleMount, decodeUtime, Errno, errnoOf, fuseError, guardHardLinkAttributes, inspectMountpoint, isSelfRenameRequest, mountDevice, prepareMountpoint, statInts, UTIME_NOW_MS, UTIME_OMIT_MS } from '../../src/mount/fuse-binding.js';
import { cleanup, Memfs, tempDir, type OpEvent } from './helpers.js';

/** The watchdog fuse-native 2.2.6 arms by default fails an operation after 15 s. */
const SLOW_WRITE_MS = Number(process.env.AETHER_TEST_SLOW_FUSE_OP_MS ?? 16_000);
const EVENT_TIMEOUT_MS = 5000;
const O_ACCMODE = 0o3;

function errnoCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as NodeJS.ErrnoException).code;
  }
  return undefined;
}

function lastOp(fs: Memfs, op: string, path: string): OpEvent {
  const all = fs.ops(op, path);
  const e = all[all.length - 1];
  assert.ok(e, `no ${op} event for ${path}`);
  return e;
}

describe('fuse-binding: the addon and the plain helpers', () => {
  it('loads fuse.node built from source in build/Release, not a prebuild', () => {
    const maps = readFileSync('/proc/self/maps', 'utf8').split('\n');
    const loaded = maps.filter((l) => /fuse[^/]*\.node$/.test(l)).map((l) => l.slice(l.indexOf('/')));
    assert.ok(loaded.length > 0, 'fuse-native is not loaded');
    for (const p of loaded) assert.match(p, /\/node_modules\/fuse-native\/build\/Release\/fuse\.node$/);
  });

  it('installs the per-reply attribute timeouts in libfuse (x86_64/aarch64 Linux), so the mount may cache attributes', () => {
    // Without them the mount silently falls back to attr_timeout=0: correct, but a getattr per stat.
    assert.equal(guardHardLinkAttributes(), ['x64', 'arm64'].includes(process.arch) && process.platform === 'linux');
    assert.equal(guardHardLinkAttributes(), guardHardLinkAttributes(), 'idempotent');
  });

  it('answers a rename of a name onto itself (RENAME, RENAME2) before libfuse, which would wait on it for good; no other request', () => {
    /** A raw request: the 40-byte header, the rename's arguments, the two names. */
    const req = (opcode: number, dir: number, newDir: number, from: string, to: string, cut = 0): Buffer => {
      const arg = Buffer.alloc(opcode === 45 ? 16 : 8);
      arg.writeBigUInt64LE(BigInt(newDir));
      const body = Buffer.concat([arg, Buffer.from(`${from}\0${to}\0`)]);
      const head = Buffer.alloc(40);
      head.writeUInt32LE(40 + body.length, 0);
      head.writeUInt32LE(opcode, 4);
      head.writeBigUInt64LE(7n, 8);
      head.writeBigUInt64LE(BigInt(dir), 16);
      const all = Buffer.concat([head, body]);
      return all.subarray(0, all.length - cut);
    };
    assert.equal(isSelfRenameRequest(req(12, 1, 1, 'd1', 'd1')), true);
    assert.equal(isSelfRenameRequest(req(45, 5, 5, 'x', 'x')), true);
    assert.equal(isSelfRenameRequest(req(12, 1, 1, 'd1', 'd10')), false);
    assert.equal(isSelfRenameRequest(req(12, 1, 1, 'd10', 'd1')), false);
    assert.equal(isSelfRenameRequest(req(12, 1, 2, 'd1', 'd1')), false);
    assert.equal(isSelfRenameRequest(req(45, 2, 1, 'x', 'x')), false);
    assert.equal(isSelfRenameRequest(req(13, 1, 1, 'd1', 'd1')), false, 'another opcode');
    assert.equal(isSelfRenameRequest(req(12, 1, 1, 'd1', 'd1', 1)), false, 'the second name cut short');
    assert.equal(isSelfRenameRequest(req(12, 1, 1, 'd1', 'd1').subarray(0, 30)), false, 'a header cut short');
  });

  it('the binding\'s attribute answers are claimed by one mount of a process at a time', () => {
    const first = claimBindingAttrs();
    assert.ok(first);
    assert.equal(claimBindingAttrs(), null, 'a second claim while the first holds them');
    first.put('/x', { mode: 0o100644, size: 1, atime: 0, mtime: 0, ctime: 0 });
    first.drop('/x');
    first.clear();
    assert.equal(first.hits(), 0, 'no mount is bound: nothing was answered');
    first.release();
    first.release();
    const again = claimBindingAttrs();
    assert.ok(again, 'released: claimable again');
    again.release();
  });

  it('statInts lays a stat out as fuse-native\'s getattr reply does (64-bit fields as two words; the high half of ino last)', () => {
    const ints = new Uint32Array(statInts({ mode: 0o40755, uid: 7, gid: 8, size: 2 ** 33 + 5, nlink: 3, ino: 2 ** 32 + 9, blksize: 4096, blocks: 2 ** 32, atime: 1000, mtime: new Date(2 ** 40), ctime: 3 }).buffer);
    assert.deepEqual([...ints], [0o40755, 7, 8, 5, 2, 0, 3, 9, 0, 4096, 0, 1, 1000, 0, 0, 256, 3, 0, 1]);
  });

  it('Errno matches fuse-native\'s own constants', () => {
    const Fuse = createRequire(import.meta.url)('fuse-native') as Record<string, unknown>;
    const names = Object.keys(Fuse).filter((k) => /^E[A-Z0-9]+$/.test(k) && k in Errno);
    assert.ok(names.length > 70, `only ${names.length} shared names`);
    for (const k of names) assert.equal(Errno[k as keyof typeof Errno], Fuse[k], k);
    assert.equal(Errno.ENOENT, -2);
  });

  it('maps handler errors to errno: fs errors, AetherError.errno, fuseError; others to none', () => {
    assert.equal(errnoOf(fuseError('EEXIST')), Errno.EEXIST);
    assert.equal(errnoOf(Object.assign(new Error('x'), { code: 'ENOTEMPTY' })), Errno.ENOTEMPTY);
    assert.equal(errnoOf(new AetherError('CACHE_DIRTY_QUOTA', 'full', { errno: 'ENOSPC' })), Errno.ENOSPC);
    assert.equal(errnoOf(new AetherError('CACHE_CORRUPT', 'bad')), undefined);
    assert.equal(errnoOf(new Error('plain')), undefined);
    assert.equal(errnoOf(Object.assign(new Error('x'), { code: 'ERR_SOMETHING' })), undefined);
  });

  it('decodes the utimens sentinels', () => {
    assert.equal(decodeUtime(UTIME_NOW_MS), 'now');
    assert.equal(decodeUtime(UTIME_OMIT_MS), 'omit');
    assert.equal(decodeUtime(1_500_000_000_000), 1_500_000_000_000);
    assert.equal(decodeUtime(0), 0);
    assert.equal(decodeUtime(-86_400_000), -86_400_000, 'before 1970');
    assert.equal(decodeUtime(2 ** 64 - 86_400_000), undefined);
  });
});

describe('fuse-binding: a memfs mount with max_write=1048576, 1024 KiB readahead and aether_auto_inval_data', () => {
  let dir: string | undefined;
  let fs: Memfs | undefined;
  const p = (name: string): string => join(dir ?? '/nonexistent', name);
  const MiB = 1 << 20;

  before(async () => {
    dir = tempDir();
    // aether_auto_inval_data too: the binding takes its own option out before libfuse, which refuses unknown ones.
    fs = await Memfs.start({ mountpoint: dir, options: { bigWrites: true, maxWriteBytes: MiB, readaheadKib: 1024, autoInvalData: true } });
    assert.deepEqual(fs.events[0], { ev: 'mounted', staleCleaned: false });
  });

  after(() => cleanup(dir, fs));

  it('the readahead is set on the device of the mount', async () => {
    const dev = await mountDevice(dir!);
    assert.match(dev ?? '', /^0:\d+$/);
    assert.equal(readFileSync(`/sys/class/bdi/${dev}/read_ahead_kb`, 'utf8').trim(), '1024');
  });

  it('the readahead holds when the kernel takes the INIT reply late (processing it lowers the readahead to the reply\'s 128 KiB)', async () => {
    const late = tempDir();
    let m: Memfs | undefined;
    process.env.AETHER_TEST_INIT_DELAY_US = '50000';
    try {
      m = await Memfs.start({ mountpoint: late, options: { bigWrites: true, maxWriteBytes: MiB, readaheadKib: 1024 } });
    } finally {
      delete process.env.AETHER_TEST_INIT_DELAY_US;
    }
    try {
      assert.deepEqual(m.events[0], { ev: 'mounted', staleCleaned: false });
      statSync(late); // answered only once the kernel has processed INIT
      assert.equal(readFileSync(`/sys/class/bdi/${await mountDevice(late)}/read_ahead_kb`, 'utf8').trim(), '1024');
    } finally {
      await cleanup(late, m);
    }
  });

  it('a 4 MiB write(2) arrives as four 1 MiB requests (through libfuse 2.9 alone: 128 KiB each)', async () => {
    const fd = openSync(p('big'), 'w');
    assert.equal(writeSync(fd, Buffer.alloc(4 * MiB, 7)), 4 * MiB);
    closeSync(fd);
    await fs!.barrier();
    const sizes = fs!.ops('write', '/big').map((e) => e.length as number);
    assert.deepEqual(sizes, [MiB, MiB, MiB, MiB]);
    assert.equal(statSync(p('big')).size, 4 * MiB);
  });

  it('a sequential read is read ahead in 1 MiB requests', async () => {
    const data = Buffer.alloc(4 * MiB);
    for (let i = 0; i < data.length; i += 4096) data.writeUInt32BE(i, i);
    writeFileSync(p('seq'), data);
    const before = fs!.events.length;
    const fd = openSync(p('seq'), 'r');
    const got = Buffer.alloc(4 * MiB);
    for (let at = 0; at < got.length; ) at += readSync(fd, got, at, MiB, at);
    closeSync(fd);
    assert.ok(got.equals(data));
    await fs!.barrier();
    const sizes = fs!.events.slice(before).filter((e): e is OpEvent => e.ev === 'op' && e.op === 'read' && e.path === '/seq').map((e) => e.length as number);
    assert.equal(Math.max(...sizes), MiB, `read requests: ${sizes.join(' ')}`);
  });
});

describe('fuse-binding: a memfs mount with big_writes, max_write=131072 and no watchdog', () => {
  let dir: string | undefined;
  let fs: Memfs | undefined;
  const p = (name: string): string => join(dir ?? '/nonexistent', name);

  before(async () => {
    dir = tempDir();
    fs = await Memfs.start({
      mountpoint: dir,
      options: { bigWrites: true, maxWriteBytes: 131072, fsname: 'aether-test', subtype: 'aethertest' },
      slowWritePath: '/slow',
      slowWriteMs: SLOW_WRITE_MS,
    });
    assert.deepEqual(fs.events[0], { ev: 'mounted', staleCleaned: false });
  });

  after(() => cleanup(dir, fs));

  it('mounts with the requested fsname and subtype', () => {
    const line = readFileSync('/proc/mounts', 'utf8').split('\n').find((l) => l.split(' ')[1] === dir);
    assert.match(line ?? '', /^aether-test \S+ fuse\.aethertest /);
  });

  it('utimes sets atime and mtime each to its own value (2.2.6 sent atime twice)', () => {
    writeFileSync(p('times'), 'x');
    utimesSync(p('times'), 1_000_000_000, 1_500_000_000);
    const st = statSync(p('times'));
    assert.equal(st.atimeMs, 1_000_000_000_000);
    assert.equal(st.mtimeMs, 1_500_000_000_000);
  });

  it('touch -m changes mtime and leaves atime alone (UTIME_OMIT)', async () => {
    writeFileSync(p('touch-m'), 'x');
    utimesSync(p('touch-m'), 1_000_000_000, 1_200_000_000);
    execFileSync('touch', ['-m', '-d', '@1500000000', p('touch-m')]);
    const st = statSync(p('touch-m'));
    assert.equal(st.atimeMs, 1_000_000_000_000);
    assert.equal(st.mtimeMs, 1_500_000_000_000);
    await fs!.barrier();
    const e = lastOp(fs!, 'utimens', '/touch-m');
    assert.deepEqual([e.atime, e.mtime], ['omit', 1_500_000_000_000]);
  });

  it('touch -a changes atime and leaves mtime alone (UTIME_OMIT)', async () => {
    writeFileSync(p('touch-a'), 'x');
    utimesSync(p('touch-a'), 1_000_000_000, 1_200_000_000);
    execFileSync('touch', ['-a', '-d', '@1100000000', p('touch-a')]);
    const st = statSync(p('touch-a'));
    assert.equal(st.atimeMs, 1_100_000_000_000);
    assert.equal(st.mtimeMs, 1_200_000_000_000);
    await fs!.barrier();
    const e = lastOp(fs!, 'utimens', '/touch-a');
    assert.deepEqual([e.atime, e.mtime], [1_100_000_000_000, 'omit']);
  });

  it('touch with no time sets both to now (UTIME_NOW)', async () => {
    writeFileSync(p('touch-now'), 'x');
    utimesSync(p('touch-now'), 1_000_000_000, 1_200_000_000);
    const t0 = Date.now();
    execFileSync('touch', [p('touch-now')]);
    const t1 = Date.now();
    await fs!.barrier();
    const e = lastOp(fs!, 'utimens', '/touch-now');
    assert.deepEqual([e.atime, e.mtime], ['now', 'now']);
    const st = statSync(p('touch-now'));
    for (const t of [st.atimeMs, st.mtimeMs]) assert.ok(t >= t0 - 1000 && t <= t1 + 1000, `${t} not within [${t0}, ${t1}]`);
  });

  it('a time before 1970 keeps its sign both ways (it was wrapped around 2^64), to the millisecond', () => {
    writeFileSync(p('old'), 'x');
    const r = spawnSync('touch', ['-d', '@-86400', p('old')], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(statSync(p('old')).mtimeMs, -86_400_000);
    // Node's utimes takes a negative time for "now": Python sets it.
    const py = spawnSync('python3', ['-c', 'import os, sys; os.utime(sys.argv[1], ns=(-1_500_000_000, -1_000_000))', p('old')], { encoding: 'utf8' });
    assert.equal(py.status, 0, py.stderr);
    const st = statSync(p('old'));
    assert.deepEqual([st.atimeMs, st.mtimeMs], [-1500, -1]);
  });

  it('create receives the open flags (O_WRONLY|O_CREAT|O_EXCL|O_APPEND)', async () => {
    const fd = openSync(p('created'), constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_APPEND, 0o640);
    closeSync(fd);
    await fs!.barrier();
    const e = lastOp(fs!, 'create', '/created');
    const flags = e.flags as number;
    assert.equal(flags & O_ACCMODE, constants.O_WRONLY);
    for (const f of ['O_CREAT', 'O_EXCL', 'O_APPEND'] as const) assert.ok(flags & constants[f], `${f} missing from ${flags.toString(16)}`);
    assert.equal((e.mode as number) & 0o7777, 0o640);
    assert.equal((e.mode as number) & constants.S_IFMT, constants.S_IFREG);
  });

  it('open(O_TRUNC) of an existing file arrives as open without O_TRUNC, then truncate(path, 0)', async () => {
    writeFileSync(p('trunc'), 'some content');
    const before = fs!.events.length;
    closeSync(openSync(p('trunc'), constants.O_WRONLY | constants.O_TRUNC | constants.O_APPEND));
    await fs!.barrier();
    const seen = fs!.events.slice(before).filter((e): e is OpEvent => e.ev === 'op' && e.path === '/trunc');
    const openAt = seen.findIndex((e) => e.op === 'open');
    const truncAt = seen.findIndex((e) => e.op === 'truncate');
    assert.ok(openAt >= 0 && truncAt > openAt, JSON.stringify(seen));
    const flags = seen[openAt]!.flags as number;
    assert.equal(flags & constants.O_TRUNC, 0);
    assert.ok(flags & constants.O_APPEND);
    assert.equal(seen[truncAt]!.size, 0);
    assert.equal(statSync(p('trunc')).size, 0);
  });

  it('a 1 MiB write arrives in requests larger than 4 KiB, at most max_write', async (t) => {
    const fd = openSync(p('big'), 'w');
    assert.equal(writeSync(fd, Buffer.alloc(1 << 20, 7)), 1 << 20);
    closeSync(fd);
    await fs!.barrier();
    const sizes = fs!.ops('write', '/big').map((e) => e.length as number);
    const max = Math.max(...sizes);
    t.diagnostic(`write requests: ${sizes.length}, largest ${max} bytes`);
    assert.ok(max > 4096, `largest write ${max}`);
    assert.ok(max <= 131072, `largest write ${max}`);
    assert.equal(sizes.reduce((a, b) => a + b, 0), 1 << 20);
    assert.equal(statSync(p('big')).size, 1 << 20);
  });

  it('renameat2 flags never reach the handler: NOREPLACE and EXCHANGE fail with EINVAL', async (t) => {
    if (spawnSync('python3', ['--version']).status !== 0) return t.skip('python3 is needed to call renameat2');
    writeFileSync(p('ren-a'), 'a');
    writeFileSync(p('ren-b'), 'b');
    const renameat2 = (from: string, to: string, flags: number): string => {
      const code = `import ctypes,os,sys\nlibc=ctypes.CDLL(None,use_errno=True)\nr=libc.renameat2(-100,sys.argv[1].encode(),-100,sys.argv[2].encode(),int(sys.argv[3]))\nprint('OK' if r==0 else os.strerror(ctypes.get_errno()))`;
      return execFileSync('python3', ['-c', code, from, to, String(flags)], { encoding: 'utf8' }).trim();
    };
    assert.equal(renameat2(p('ren-a'), p('ren-c'), 1), 'Invalid argument'); // RENAME_NOREPLACE
    assert.equal(renameat2(p('ren-a'), p('ren-b'), 1), 'File exists'); // the VFS sees the target first
    assert.equal(renameat2(p('ren-a'), p('ren-b'), 2), 'Invalid argument'); // RENAME_EXCHANGE
    await fs!.barrier();
    assert.equal(fs!.ops('rename', '/ren-a').length, 0);
    assert.equal(renameat2(p('ren-a'), p('ren-c'), 0), 'OK');
    await fs!.barrier();
    assert.deepEqual(lastOp(fs!, 'rename', '/ren-a').to, '/ren-c');
  });

  it('extended attributes round-trip; a value larger than the caller\'s first buffer comes back whole', (t) => {
    if (spawnSync('python3', ['--version']).status !== 0) return t.skip('python3 is needed for the xattr calls');
    writeFileSync(p('xattr'), 'x');
    // CPython's os.getxattr asks with a 128-byte buffer first and retries larger on ERANGE.
    const code = [
      'import os,sys', 'p=sys.argv[1]', "big=b'v'*300",
      "os.setxattr(p,'user.small',b'hello')", "os.setxattr(p,'user.big',big)",
      "assert os.getxattr(p,'user.small')==b'hello'", "assert os.getxattr(p,'user.big')==big",
      "assert sorted(os.listxattr(p))==['user.big','user.small'], os.listxattr(p)",
      "os.removexattr(p,'user.small')",
      'try:\n  os.getxattr(p,"user.small"); print("still there")\nexcept OSError as e: print(os.strerror(e.errno))',
    ].join('\n');
    assert.equal(execFileSync('python3', ['-c', code, p('xattr')], { encoding: 'utf8' }).trim(), 'No data available');
  });

  it('without hard_remove, unlink of an open file renames it to .fuse_hidden*; I/O and release follow that name', async () => {
    writeFileSync(p('hide'), 'hello');
    const fd = openSync(p('hide'), 'r+');
    unlinkSync(p('hide'));
    await fs!.barrier();
    const hidden = lastOp(fs!, 'rename', '/hide').to as string;
    assert.match(hidden, /^\/\.fuse_hidden[0-9a-f]{16}$/);
    assert.equal(fs!.ops('unlink', '/hide').length, 0);
    assert.equal(writeSync(fd, 'WORLD', 5), 5);
    const buf = Buffer.alloc(16);
    assert.equal(buf.subarray(0, readSync(fd, buf, 0, 16, 0)).toString(), 'helloWORLD');
    await fs!.barrier();
    assert.equal(lastOp(fs!, 'write', hidden).position, 5);
    closeSync(fd);
    await fs!.waitFor((e) => e.ev === 'op' && e.op === 'unlink' && e.path === hidden, EVENT_TIMEOUT_MS);
    assert.equal(lastOp(fs!, 'release', hidden).path, hidden);
  });

  it(`an operation slower than 15 s is not failed with ETIMEDOUT (handler delay ${SLOW_WRITE_MS} ms)`, { timeout: SLOW_WRITE_MS + 30_000 }, async () => {
    const fh = await open(p('slow'), 'w');
    try {
      const t0 = Date.now();
      const { bytesWritten } = await fh.write(Buffer.from('patience'), 0, 8, 0);
      const elapsedMs = Date.now() - t0;
      assert.equal(bytesWritten, 8);
      assert.ok(elapsedMs >= SLOW_WRITE_MS - 100, `write answered after ${elapsedMs} ms`);
    } finally {
      await fh.close();
    }
    assert.equal(readFileSync(p('slow'), 'utf8'), 'patience');
  });
});

describe('fuse-binding: hard_remove', () => {
  let dir: string | undefined;
  let fs: Memfs | undefined;

  before(async () => {
    dir = tempDir();
    fs = await Memfs.start({ mountpoint: dir, options: { hardRemove: true } });
    assert.equal(fs.events[0]?.ev, 'mounted');
  });

  after(() => cleanup(dir, fs));

  it('unlink of an open file reaches unlink at once; I/O on the open handle fails ENOENT before any handler; flush and release get "-"', async () => {
    const path = join(dir!, 'gone');
    writeFileSync(path, 'hello');
    const fd = openSync(path, 'r+');
    unlinkSync(path);
    await fs!.barrier();
    assert.equal(fs!.ops('unlink', '/gone').length, 1);
    assert.equal(fs!.ops('rename').length, 0);
    const ioBefore = fs!.ops('write').length + fs!.ops('read').length;
    assert.equal(errnoCode(() => writeSync(fd, 'X', 0)), 'ENOENT');
    assert.equal(errnoCode(() => readSync(fd, Buffer.alloc(4), 0, 4, 0)), 'ENOENT');
    await fs!.barrier();
    assert.equal(fs!.ops('write').length + fs!.ops('read').length, ioBefore);
    closeSync(fd);
    const release = await fs!.waitFor((e) => e.ev === 'op' && e.op === 'release' && e.path === '-', EVENT_TIMEOUT_MS);
    assert.ok(fs!.ops('flush', '-').some((e) => e.fh === (release as OpEvent).fh), 'flush with path "-"');
  });
});

describe('fuse-binding: mount point checks', () => {
  const dirs: string[] = [];
  const fixtures: Memfs[] = [];
  const mkdir = (): string => {
    const d = tempDir();
    dirs.push(d);
    return d;
  };
  const start = async (mountpoint: string): Promise<Memfs> => {
    const f = await Memfs.start({ mountpoint, options: {} });
    fixtures.push(f);
    return f;
  };
  const rejectsWith = (p: Promise<unknown>, code: Parameters<typeof isAetherError>[1]) => assert.rejects(p, (err) => isAetherError(err, code));

  after(async () => {
    for (const f of fixtures) await f.stop();
    for (const d of dirs) await cleanup(d);
  });

  it('refuses a missing, a non-directory and a non-empty mount point', async () => {
    const d = mkdir();
    await rejectsWith(prepareMountpoint(join(d, 'missing')), 'MOUNT_MISSING');
    writeFileSync(join(d, 'file'), '');
    await rejectsWith(prepareMountpoint(join(d, 'file')), 'MOUNT_NOT_DIRECTORY');
    await rejectsWith(prepareMountpoint(d), 'MOUNT_NOT_EMPTY');
    assert.equal(await inspectMountpoint(d), 'not-empty');
    await prepareMountpoint(join(d, 'made', 'here'), { create: true });
    assert.equal(await inspectMountpoint(join(d, 'made', 'here')), 'empty');
  });

  it('FuseMount.mount refuses a non-empty mount point with MOUNT_NOT_EMPTY', async () => {
    const d = mkdir();
    mkdirSync(join(d, 'sub'));
    const f = await start(d);
    assert.deepEqual([f.events[0]?.ev, (f.events[0] as { code?: string }).code], ['mount-error', 'MOUNT_NOT_EMPTY']);
    assert.equal(await f.exited, 2);
    assert.equal(await inspectMountpoint(d), 'not-empty');
  });

  it('refuses an already mounted mount point with MOUNT_BUSY and leaves the live mount alone', async () => {
    const d = mkdir();
    const live = await start(d);
    assert.equal(live.events[0]?.ev, 'mounted');
    assert.equal(await inspectMountpoint(d), 'mounted');
    await rejectsWith(prepareMountpoint(d), 'MOUNT_BUSY');
    assert.equal(await cleanStaleMount(d), false);
    const second = await start(d);
    assert.deepEqual([second.events[0]?.ev, (second.events[0] as { code?: string }).code], ['mount-error', 'MOUNT_BUSY']);
    writeFileSync(join(d, 'still-served'), 'yes');
    assert.equal(readFileSync(join(d, 'still-served'), 'utf8'), 'yes');
    await live.stop();
    assert.equal(await inspectMountpoint(d), 'empty');
  });

  it('detects a stale mount after kill -9 of the FUSE process and cleans it', async () => {
    const d = mkdir();
    const dead = await start(d);
    await dead.kill9();
    assert.equal(errnoCode(() => statSync(d)), 'ENOTCONN');
    assert.equal(await inspectMountpoint(d), 'stale');
    assert.equal(await cleanStaleMount(d), true);
    assert.equal(await inspectMountpoint(d), 'empty');
  });

  it('a new mount over a stale one cleans it first and serves', async () => {
    const d = mkdir();
    await (await start(d)).kill9();
    const next = await start(d);
    assert.deepEqual(next.events[0], { ev: 'mounted', staleCleaned: true });
    writeFileSync(join(d, 'after-stale'), 'ok');
    assert.equal(readFileSync(join(d, 'after-stale'), 'utf8'), 'ok');
  });
});

describe('fuse-binding: with the hooks an Aether mount installs', () => {
  let dir: string | undefined;
  let fs: Memfs | undefined;

  before(async () => {
    dir = tempDir();
    fs = await Memfs.start({ mountpoint: dir, options: {}, hooks: true });
    assert.equal(fs.events[0]?.ev, 'mounted');
  });

  after(() => cleanup(dir, fs));

  it('a rename over an open file hides it first, and the binding says both renames are made for a RENAME request', async () => {
    writeFileSync(join(dir!, 'saved'), 'old');
    writeFileSync(join(dir!, 'saved.tmp'), 'new');
    const fd = openSync(join(dir!, 'saved'), 'r');
    renameSync(join(dir!, 'saved.tmp'), join(dir!, 'saved'));
    await fs!.barrier();
    const hide = lastOp(fs!, 'rename', '/saved');
    assert.match(hide.to as string, /^\/\.fuse_hidden[0-9a-f]{16}$/);
    assert.equal(hide.forRename, true);
    assert.deepEqual([lastOp(fs!, 'rename', '/saved.tmp').to, lastOp(fs!, 'rename', '/saved.tmp').forRename], ['/saved', true]);
    closeSync(fd);
    await fs!.waitFor((e) => e.ev === 'op' && e.op === 'unlink' && e.path === hide.to, EVENT_TIMEOUT_MS);
    // An unlink of an open file is hidden the same way, and the binding says so.
    const held = openSync(join(dir!, 'saved'), 'r');
    unlinkSync(join(dir!, 'saved'));
    await fs!.barrier();
    const unlinkHide = lastOp(fs!, 'rename', '/saved');
    assert.notEqual(unlinkHide.to, hide.to);
    assert.equal(unlinkHide.forRename, false);
    closeSync(held);
  });
});
