// Issue 5: a full disk under the state directory (a small tmpfs, filled by another program).
// Changes are refused with ENOSPC before they are made, nothing acknowledged is lost, and once
// there is room the same mount takes changes again, without a restart.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startMount, tempDir, waitDrained, type MountProcess } from './harness.js';
import { errnoOf, eventually, py, stopAndClean } from './posix-helpers.js';

const CHUNK = 64 * 1024;
/** The bytes of chunk `i` of the big file: each chunk its own, so a misplaced one shows. */
const chunk = (i: number): Buffer => Buffer.alloc(CHUNK, `chunk ${i};`);

/** Writes `path` until the disk refuses a byte more: 1 MiB at a time, then 4 KiB. */
function fill(path: string): void {
  const r = spawnSync('bash', ['-c', `dd if=/dev/zero of="$0" bs=1M status=none; dd if=/dev/zero of="$0" bs=4k oflag=append conv=notrunc status=none; true`, path]);
  assert.equal(r.status, 0, String(r.stderr));
}

describe('a full disk under the state directory', () => {
  let disk: string;
  let m: MountProcess | undefined;

  before(() => {
    disk = tempDir('aether-full-');
    const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=48m', 'tmpfs', disk]);
    assert.equal(r.status, 0, `mount tmpfs: ${String(r.stderr)}`);
  });
  after(async () => {
    await stopAndClean(m);
    spawnSync('umount', ['-l', disk]);
  });

  it('a disk with room: six programs writing 1 MiB at a time at once all finish (a review: the reservation refused them while a segment was being made)', async () => {
    // The mount's disk is the test's temporary directory (not the small tmpfs); small segments roll often.
    const busy = await startMount({ env: { AFS_AETHER_JOURNAL_SEGMENT_BYTES: String(4 << 20) } });
    const r = spawnSync('bash', ['-c', 'for i in 1 2 3 4 5 6; do dd if=/dev/zero of="$0/f$i" bs=1M count=32 status=none & done; wait; ls -l "$0" | wc -l', busy.mnt], { encoding: 'utf8' });
    assert.equal(r.stderr, '', 'no dd failed');
    for (let i = 1; i <= 6; i++) assert.equal(statSync(join(busy.mnt, `f${i}`)).size, 32 << 20);
    assert.doesNotMatch(busy.stderr(), /disk is full/);
    await busy.stop();
  });

  it('a disk with less free than cache_min_free_bytes (512 MiB by default): the start says that writes will wait', async () => {
    const small = await startMount({ mnt: join(tempDir(), 'mnt'), stateDir: join(disk, 'state-small') });
    assert.ok(await eventually(() => /the state directory's disk has \d+ MiB free, under cache_min_free_bytes \(512 MiB\): writes wait/.test(small.stderr())), small.stderr());
    await small.stop();
    rmSync(join(disk, 'state-small'), { recursive: true, force: true });
  });

  it('refuses changes with ENOSPC before making them, loses nothing, and takes changes again once there is room, without a restart', async () => {
    const env = {
      // The disk-free backpressure would hold writers long before the disk is full: off, to get there.
      AFS_AETHER_CACHE_MIN_FREE_BYTES: '0',
      AFS_AETHER_CACHE_RESUME_FREE_BYTES: '0',
      AFS_AETHER_JOURNAL_SEGMENT_BYTES: String(1 << 20),
    };
    const mnt = join(tempDir(), 'mnt');
    const stateDir = join(disk, 'state');
    m = await startMount({ mnt, stateDir, env });
    writeFileSync(join(mnt, 'before'), 'written before');
    await waitDrained(m);

    fill(join(disk, 'filler'));
    // A writer in the mount: 64 KiB at a time until a write fails. What returned is acknowledged.
    const out = py(
      `import os, json, errno
fd = os.open('big', os.O_CREAT | os.O_WRONLY, 0o644)
n, err = 0, None
try:
    while n < 400:
        os.write(fd, ((b'chunk %d;' % n) * ${CHUNK})[:${CHUNK}])
        n += 1
except OSError as e:
    err = errno.errorcode[e.errno]
os.close(fd)
print(json.dumps({'n': n, 'err': err}))`,
      mnt,
    ) as { n: number; err: string | null };
    assert.equal(out.err, 'ENOSPC', `the writer got ${out.err} after ${out.n} writes`);
    assert.ok(out.n < 400);
    // Smaller changes still fit in what the journal had reserved, until that is used up too.
    let small = 0;
    while (small < 5000 && errnoOf(() => writeFileSync(join(mnt, `small-${small}`), '')) === 'ok') small++;
    assert.ok(small < 5000, 'creates are refused too');
    assert.equal(errnoOf(() => writeFileSync(join(mnt, `small-${small}`), '')), 'ENOSPC', 'a create');
    assert.equal(errnoOf(() => mkdirSync(join(mnt, 'refused-dir'))), 'ENOSPC', 'a mkdir');
    const smalls = Array.from({ length: small }, (_, i) => `small-${i}`);
    // Reads and listings still answer; the refused changes were never made.
    assert.equal(readFileSync(join(mnt, 'before'), 'utf8'), 'written before');
    assert.deepEqual(readdirSync(mnt).sort(), ['before', 'big', ...smalls].sort());
    assert.equal(statSync(join(mnt, 'big')).size, out.n * CHUNK);
    const mount = m;
    assert.ok(await eventually(() => /disk is full: changes are refused with ENOSPC/.test(mount.stderr())), 'said in the log');
    // Once, though small changes fitted between refused ones (the two lines alternated at every change: a review).
    assert.equal(mount.stderr().match(/disk is full/g)?.length, 1, mount.stderr());
    assert.doesNotMatch(mount.stderr(), /has room again/);

    // Room again: the same mount takes changes.
    rmSync(join(disk, 'filler'));
    assert.ok(await eventually(() => errnoOf(() => writeFileSync(join(mnt, 'after'), 'written after')) === 'ok', 5000), 'a create works again');
    writeFileSync(join(mnt, 'big'), chunk(out.n), { flag: 'a' });
    await waitDrained(m, 30_000);

    // kill -9 and mount again: the tree is exactly what was acknowledged.
    await m.kill9();
    m = await startMount({ mnt, stateDir, env });
    assert.deepEqual(readdirSync(mnt).sort(), ['after', 'before', 'big', ...smalls].sort());
    assert.equal(readFileSync(join(mnt, 'after'), 'utf8'), 'written after');
    const big = readFileSync(join(mnt, 'big'));
    assert.equal(big.length, (out.n + 1) * CHUNK);
    for (let i = 0; i <= out.n; i++) assert.ok(big.subarray(i * CHUNK, (i + 1) * CHUNK).equals(chunk(i)), `chunk ${i}`);
  });
});
