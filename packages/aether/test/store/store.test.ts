import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Store } from '../../src/store/store.js';
import { applyOp } from '../../src/tree/apply.js';
import { MemoryMeta } from '../../src/tree/meta.js';
import { ROOT_INO, type Op } from '../../src/tree/ops.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'aether-store-'));
const T = 1000;
let seq = 0;
const batch = (...ops: Op[]) => ops.map((op) => ({ seq: ++seq, op }));

describe('embedded store', () => {
  it('applies a batch, reads content back, and survives reopen', async () => {
    const dir = tmp();
    let s = Store.open(dir);
    const data = Buffer.alloc(200_000, 7);
    await s.applyBatch(batch({ t: 'mknode', parent: ROOT_INO, name: 'f', ino: 2, kind: 'file', mode: 0o644, uid: 1, gid: 1, timeMs: T }, { t: 'write', ino: 2, offset: 0, data, timeMs: T }));
    s.close();
    s = Store.open(dir);
    assert.equal(s.getInode(2)?.size, 200_000);
    assert.ok(s.read(2, 0, 300_000).equals(data));
    assert.ok(s.read(2, 65_000, 1_000).equals(data.subarray(65_000, 66_000)));
    s.close();
  });
  it('is idempotent: a re-sent batch is skipped', async () => {
    const s = Store.open(tmp());
    const b = batch({ t: 'mknode', parent: ROOT_INO, name: 'f', ino: 2, kind: 'file', mode: 0o644, uid: 1, gid: 1, timeMs: T }, { t: 'write', ino: 2, offset: 0, data: Buffer.from('abc'), timeMs: T });
    assert.equal((await s.applyBatch(b)).applied, 2);
    const again = await s.applyBatch(b);
    assert.deepEqual(again, { applied: 0, rejected: [], restored: [] });
    assert.equal(s.read(2, 0, 10).toString(), 'abc');
    assert.equal(s.appliedSeq, b[1]?.seq);
    s.close();
  });
  it('sparse files and offsets past 4 GiB read zeros in holes and store no chunk for them', async () => {
    const dir = tmp();
    const s = Store.open(dir);
    await s.applyBatch(batch({ t: 'mknode', parent: ROOT_INO, name: 'sparse', ino: 2, kind: 'file', mode: 0o644, uid: 1, gid: 1, timeMs: T }, { t: 'write', ino: 2, offset: 5 * 2 ** 30, data: Buffer.from('end'), timeMs: T }));
    assert.equal(s.getInode(2)?.size, 5 * 2 ** 30 + 3);
    assert.ok(s.read(2, 0, 4096).equals(Buffer.alloc(4096)));
    assert.equal(s.read(2, 5 * 2 ** 30, 3).toString(), 'end');
    assert.equal(s.chunks.count, 1);
    s.close();
  });
  it('truncate down then up reads zeros in the regrown range', async () => {
    const s = Store.open(tmp());
    await s.applyBatch(batch({ t: 'mknode', parent: ROOT_INO, name: 'f', ino: 2, kind: 'file', mode: 0o644, uid: 1, gid: 1, timeMs: T }, { t: 'write', ino: 2, offset: 0, data: Buffer.alloc(100_000, 1), timeMs: T }));
    await s.applyBatch(batch({ t: 'truncate', ino: 2, size: 10, timeMs: T }, { t: 'truncate', ino: 2, size: 70_000, timeMs: T }));
    const back = s.read(2, 0, 70_000);
    assert.ok(back.subarray(0, 10).equals(Buffer.alloc(10, 1)));
    assert.ok(back.subarray(10).equals(Buffer.alloc(69_990)));
    s.close();
  });
  it('identical content is stored once; collectChunks removes unreferenced chunks', async () => {
    const dir = tmp();
    const s = Store.open(dir);
    const d = Buffer.alloc(4096, 9);
    await s.applyBatch(
      batch(
        { t: 'mknode', parent: ROOT_INO, name: 'a', ino: 2, kind: 'file', mode: 0o644, uid: 1, gid: 1, timeMs: T },
        { t: 'mknode', parent: ROOT_INO, name: 'b', ino: 3, kind: 'file', mode: 0o644, uid: 1, gid: 1, timeMs: T },
        { t: 'write', ino: 2, offset: 0, data: d, timeMs: T },
        { t: 'write', ino: 3, offset: 0, data: d, timeMs: T },
      ),
    );
    assert.equal(s.chunks.count, 1);
    await s.applyBatch(batch({ t: 'unlink', parent: ROOT_INO, name: 'a', timeMs: T }, { t: 'unlink', parent: ROOT_INO, name: 'b', timeMs: T }));
    // An orphan that journal entries not yet applied still write to is kept for them.
    assert.deepEqual(s.purgeOrphans(new Set([3])), [2]);
    assert.deepEqual(s.purgeOrphans(), [3]);
    assert.equal(s.collectChunks(), 1);
    assert.equal(s.chunks.count, 0);
    assert.deepEqual(readdirSync(join(dir, 'packs')).length <= 1, true);
    s.close();
  });
  it('an op that would store an invalid inode is rejected alone, not with its batch', async () => {
    const s = Store.open(tmp());
    const r = await s.applyBatch(
      batch(
        { t: 'mknode', parent: ROOT_INO, name: 'bad', ino: 2, kind: 'file', mode: 0o644, uid: Number.NaN, gid: 0, timeMs: T },
        { t: 'mknode', parent: ROOT_INO, name: 'ok', ino: 3, kind: 'file', mode: 0o644, uid: 0, gid: 0, timeMs: T },
      ),
    );
    assert.equal(r.applied, 1);
    assert.match(r.rejected[0]?.error ?? '', /inode 2: not a storable inode/);
    assert.equal(s.getInode(2), undefined);
    assert.equal(s.getInode(3)?.mode, 0o644);
    // A write or truncate refused for the inode it would leave changes no byte either.
    const file = batch(
      { t: 'mknode', parent: ROOT_INO, name: 'f', ino: 4, kind: 'file', mode: 0o644, uid: 0, gid: 0, timeMs: T },
      { t: 'write', ino: 4, offset: 0, data: Buffer.alloc(70_000, 1), timeMs: T },
    );
    await s.applyBatch(file);
    const refused = await s.applyBatch(
      batch(
        { t: 'write', ino: 4, offset: 0, data: Buffer.alloc(65_536, 2), timeMs: Number.NaN },
        { t: 'write', ino: 4, offset: 100, data: Buffer.alloc(10, 3), timeMs: Number.NaN },
        { t: 'truncate', ino: 4, size: 10, timeMs: Number.NaN },
      ),
    );
    assert.equal(refused.rejected.length, 3);
    assert.ok(s.read(4, 0, 70_000).equals(Buffer.alloc(70_000, 1)));
    s.close();
  });
  it('many small writes to one block in one batch store the bytes written, cut to the size', async () => {
    const s = Store.open(tmp());
    const ops: Op[] = [{ t: 'mknode', parent: ROOT_INO, name: 'f', ino: 2, kind: 'file', mode: 0o644, uid: 0, gid: 0, timeMs: T }];
    const want = Buffer.alloc(70_000);
    for (let off = 0; off < 70_000; off += 5_000) {
      const data = Buffer.alloc(Math.min(3_000, 70_000 - off), off / 5_000 + 1);
      ops.push({ t: 'write', ino: 2, offset: off, data, timeMs: T });
      data.copy(want, off);
    }
    ops.push({ t: 'truncate', ino: 2, size: 66_000, timeMs: T }, { t: 'truncate', ino: 2, size: 69_000, timeMs: T });
    want.fill(0, 66_000);
    await s.applyBatch(batch(...ops));
    assert.ok(s.read(2, 0, 69_000).equals(want.subarray(0, 69_000)));
    // Block 0 holds 64 KiB, block 1 the 3,464 bytes up to the size.
    assert.deepEqual(s.blocksOf(2).map(([idx]) => idx), [0, 1]);
    assert.equal(s.chunks.get(s.blocksOf(2)[1]![1]).length, 69_000 - 65_536);
    s.close();
  });
  it('whole-block writes are stored from the op without a copy, and later changes in the batch never touch the op', async () => {
    const s = Store.open(tmp());
    const a = Buffer.alloc(2 * 65_536, 1); // blocks 0 and 1 whole
    const c = Buffer.alloc(65_536, 3); // block 2 whole, after a partial write to it
    const ops: Op[] = [
      { t: 'mknode', parent: ROOT_INO, name: 'f', ino: 2, kind: 'file', mode: 0o644, uid: 0, gid: 0, timeMs: T },
      { t: 'write', ino: 2, offset: 2 * 65_536 + 10, data: Buffer.alloc(50, 9), timeMs: T },
      { t: 'write', ino: 2, offset: 0, data: a, timeMs: T },
      { t: 'write', ino: 2, offset: 65_536 + 64, data: Buffer.alloc(100, 2), timeMs: T },
      { t: 'write', ino: 2, offset: 2 * 65_536, data: c, timeMs: T },
      { t: 'truncate', ino: 2, size: 2 * 65_536 + 1_000, timeMs: T },
      { t: 'truncate', ino: 2, size: 2 * 65_536 + 2_000, timeMs: T },
      { t: 'truncate', ino: 2, size: 65_536 + 500, timeMs: T },
      { t: 'truncate', ino: 2, size: 65_536 + 900, timeMs: T },
    ];
    await s.applyBatch(batch(...ops));
    const want = Buffer.alloc(65_536 + 900, 1);
    want.fill(2, 65_536 + 64, 65_536 + 164).fill(0, 65_536 + 500);
    assert.ok(s.read(2, 0, want.length).equals(want));
    assert.ok(a.equals(Buffer.alloc(2 * 65_536, 1)) && c.equals(Buffer.alloc(65_536, 3)), 'the ops data is unchanged');
    assert.deepEqual(s.blocksOf(2).map(([idx, hash]) => [idx, s.chunks.get(hash).length]), [[0, 65_536], [1, 900]]);
    s.close();
  });
  it('a store fault inside an op (a pack cut short) fails the whole batch instead of passing for a refused op', async () => {
    const dir = tmp();
    const s = Store.open(dir);
    const data = Buffer.alloc(70_000, 1);
    await s.applyBatch(batch({ t: 'mknode', parent: ROOT_INO, name: 'f', ino: 2, kind: 'file', mode: 0o644, uid: 0, gid: 0, timeMs: T }, { t: 'write', ino: 2, offset: 0, data, timeMs: T }));
    const applied = s.appliedSeq;
    for (const name of readdirSync(join(dir, 'packs'))) truncateSync(join(dir, 'packs', name), 0);
    // The partial write needs the stored block: reading it fails, and with it the batch.
    const b = batch({ t: 'mknode', parent: ROOT_INO, name: 'g', ino: 3, kind: 'file', mode: 0o644, uid: 0, gid: 0, timeMs: T }, { t: 'write', ino: 2, offset: 10, data: Buffer.alloc(5, 2), timeMs: T });
    await assert.rejects(s.applyBatch(b), /shorter than its index/);
    assert.equal(s.appliedSeq, applied);
    assert.equal(s.getInode(3), undefined);
    s.close();
  });
  it('a pack write the disk cuts short fails its batch: nothing is applied, and the store works once there is room', async () => {
    // The packs on a 1 MiB tmpfs: a 1.4 MiB write fills it, and writev reports the bytes it wrote
    // without an error (the next call fails with ENOSPC). Needs root, as the mount tests do.
    const dir = tmp();
    const disk = join(dir, 'disk');
    mkdirSync(disk);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', disk]);
    try {
      mkdirSync(join(dir, 'st'));
      symlinkSync(disk, join(dir, 'st', 'packs'));
      const s = Store.open(join(dir, 'st'));
      const big = randomBytes(1400 * 1024);
      const first = batch({ t: 'mknode', parent: ROOT_INO, name: 'f', ino: 2, kind: 'file', mode: 0o644, uid: 1, gid: 1, timeMs: T }, { t: 'write', ino: 2, offset: 0, data: big, timeMs: T });
      await assert.rejects(s.applyBatch(first), (err: NodeJS.ErrnoException) => err.code === 'ENOSPC' || err.code === 'STORE_WRITE_FAILED');
      assert.equal(s.appliedSeq, 0, 'the batch is not applied');
      assert.equal(s.getInode(2), undefined);
      // Room again (the drain retries the same batch): it applies whole.
      for (const f of readdirSync(disk)) truncateSync(join(disk, f), 0);
      const small = randomBytes(300 * 1024);
      await s.applyBatch(first.map((o) => (o.op.t === 'write' ? { ...o, op: { ...o.op, data: small } } : o)));
      assert.ok(s.read(2, 0, small.length).equals(small));
      s.close();
    } finally {
      execFileSync('umount', [disk]);
    }
  });

  for (const [damage, lost] of [['has bytes changed', 1], ['is deleted', 3]] as const) {
    it(`a chunk whose pack ${damage} on disk is stored again when its data is written again, mending the files that held it`, async () => {
      const dir = tmp();
      let s = Store.open(dir);
      const data = randomBytes(150_000);
      const write = (name: string, ino: number) => batch({ t: 'mknode', parent: ROOT_INO, name, ino, kind: 'file', mode: 0o644, uid: 1, gid: 1, timeMs: T }, { t: 'write', ino, offset: 0, data, timeMs: T });
      await s.applyBatch(write('old', 2));
      s.close();
      const packs = join(dir, 'packs');
      for (const name of readdirSync(packs)) {
        if (damage === 'is deleted') rmSync(join(packs, name));
        else writeFileSync(join(packs, name), Buffer.alloc(8, 0xff), { flag: 'r+' });
      }
      s = Store.open(dir);
      assert.deepEqual(
        s.chunks.damagedPacks().map((d) => d.bytes),
        damage === 'is deleted' ? [-1] : [],
        'a missing pack is seen at open; changed bytes take store verify',
      );
      // Deduplicated against the damaged copy, this write was lost (a review).
      const r = await s.applyBatch(write('new', 3));
      assert.equal(r.restored.length, lost, 'the damaged chunks (64 KiB blocks) are stored again');
      assert.ok(s.read(3, 0, data.length).equals(data));
      assert.ok(s.read(2, 0, data.length).equals(data), 'the older file reads its data again');
      assert.deepEqual(s.chunks.damagedPacks(), []);
      assert.deepEqual((await s.applyBatch(write('third', 4))).restored, [], 'an intact copy is used as it is');
      s.close();
    });
  }

  it('a rejected op is reported and does not block later ops', async () => {
    const s = Store.open(tmp());
    const r = await s.applyBatch(batch({ t: 'rmdir', parent: ROOT_INO, name: 'missing', timeMs: T }, { t: 'mknode', parent: ROOT_INO, name: 'ok', ino: 2, kind: 'dir', mode: 0o755, uid: 0, gid: 0, timeMs: T }));
    assert.equal(r.applied, 1);
    assert.match(r.rejected[0]?.error ?? '', /^ENOENT/);
    s.close();
  });
});

describe('the store and the in-memory view agree (one apply logic)', () => {
  const names = ['a', 'b', 'c'];
  const opArb = (maxIno: number) =>
    fc.oneof(
      fc.record({ t: fc.constant('mknode' as const), parent: fc.integer({ min: 1, max: maxIno }), name: fc.constantFrom(...names), kind: fc.constantFrom('file' as const, 'dir' as const) }),
      fc.record({ t: fc.constant('unlink' as const), parent: fc.integer({ min: 1, max: maxIno }), name: fc.constantFrom(...names) }),
      fc.record({ t: fc.constant('rmdir' as const), parent: fc.integer({ min: 1, max: maxIno }), name: fc.constantFrom(...names) }),
      fc.record({ t: fc.constant('rename' as const), parent: fc.integer({ min: 1, max: maxIno }), name: fc.constantFrom(...names), newParent: fc.integer({ min: 1, max: maxIno }), newName: fc.constantFrom(...names) }),
      fc.record({
        t: fc.constant('write' as const),
        ino: fc.integer({ min: 1, max: maxIno }),
        // Block-aligned offsets too, so that some writes cover whole blocks (stored without a copy).
        offset: fc.oneof(fc.integer({ min: 0, max: 200_000 }), fc.integer({ min: 0, max: 3 }).map((k) => k * 65_536)),
        len: fc.oneof(fc.integer({ min: 0, max: 70_000 }), fc.integer({ min: 65_536, max: 140_000 })),
        byte: fc.integer({ min: 0, max: 255 }),
      }),
      fc.record({ t: fc.constant('truncate' as const), ino: fc.integer({ min: 1, max: maxIno }), size: fc.integer({ min: 0, max: 150_000 }) }),
    );
  it('random op sequences give the same tree and contents', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb(12), { minLength: 1, maxLength: 40 }), fc.integer({ min: 2, max: 12 }), async (raw, batchSize) => {
        const dir = tmp();
        Store.open(dir).close();
        const copy = tmp();
        cpSync(dir, copy, { recursive: true });
        const store = Store.open(dir);
        // The same ops again in batches of several: a batch reads and writes each inode and block
        // once (SqliteMeta), and must end exactly where one op per batch does.
        const batched = Store.open(copy);
        const ops: { seq: number; op: Op }[] = [];
        let rejected = 0;
        const mem = new MemoryMeta();
        store.loadInto(mem);
        const contents = new Map<number, Buffer>();
        let ino = 1;
        let s = 0;
        for (const r of raw) {
          let op: Op;
          if (r.t === 'mknode') op = { t: 'mknode', parent: r.parent, name: r.name, ino: ++ino, kind: r.kind, mode: 0o644, uid: 0, gid: 0, timeMs: T };
          else if (r.t === 'write') op = { t: 'write', ino: r.ino, offset: r.offset, data: Buffer.alloc(r.len, r.byte), timeMs: T };
          else if (r.t === 'rename') op = { ...r, flags: 0, timeMs: T };
          else op = { ...r, timeMs: T } as Op;
          let ok = true;
          try {
            applyOp(mem, op, { keepOrphans: true });
          } catch {
            ok = false;
          }
          const res = await store.applyBatch([{ seq: ++s, op }]);
          assert.equal(res.applied === 1, ok, `store and memory disagree on ${JSON.stringify({ ...op, data: undefined })}`);
          ops.push({ seq: s, op });
          if (!ok) rejected++;
          if (ok && op.t === 'write') {
            const cur = contents.get(op.ino) ?? Buffer.alloc(0);
            const next = Buffer.alloc(Math.max(cur.length, op.data.length > 0 ? op.offset + op.data.length : cur.length));
            cur.copy(next);
            op.data.copy(next, op.offset);
            contents.set(op.ino, next);
          }
          if (ok && op.t === 'truncate') {
            const cur = contents.get(op.ino) ?? Buffer.alloc(0);
            const next = Buffer.alloc(op.size);
            cur.copy(next, 0, 0, Math.min(cur.length, op.size));
            contents.set(op.ino, next);
          }
        }
        const data = ops.map(({ op }) => (op.t === 'write' ? Buffer.from(op.data) : null));
        let batchedRejected = 0;
        for (let i = 0; i < ops.length; i += batchSize) batchedRejected += (await batched.applyBatch(ops.slice(i, i + batchSize))).rejected.length;
        assert.equal(batchedRejected, rejected);
        ops.forEach(({ op }, i) => assert.ok(op.t !== 'write' || op.data.equals(data[i]!), 'a batch never changes an op'));
        for (const [i, inode] of mem.inodes) {
          for (const st of [store, batched]) {
            assert.deepEqual(st.getInode(i), inode);
            if (inode.kind === 'file') assert.ok(st.read(i, 0, inode.size).equals(contents.get(i) ?? Buffer.alloc(inode.size)), `content of ${i}`);
          }
        }
        store.close();
        batched.close();
      }),
      { numRuns: 60 },
    );
  });
});
