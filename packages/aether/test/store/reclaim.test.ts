/**
 * Giving back the space of deleted and overwritten data: packs left without live chunks are
 * deleted, mostly dead ones rewritten, while another connection (the mount's reading thread)
 * keeps reading, through descriptors it holds or by looking a moved chunk up again.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { PACK_BYTES_MAX } from '../../src/store/chunks.js';
import { Store } from '../../src/store/store.js';
import { ROOT_INO, type Op } from '../../src/tree/ops.js';

const T = 1000;
let seq = 0;
const batch = (...ops: Op[]) => ops.map((op) => ({ seq: ++seq, op }));
const file = (ino: number, name: string): Op => ({ t: 'mknode', parent: ROOT_INO, name, ino, kind: 'file', mode: 0o644, uid: 1, gid: 1, timeMs: T });
const packs = (dir: string) => readdirSync(join(dir, 'packs')).filter((f) => f.endsWith('.pack')).sort();
const packBytes = (dir: string) => packs(dir).reduce((sum, f) => sum + statSync(join(dir, 'packs', f)).size, 0);

describe('embedded store: reclaiming space', () => {
  it('deleted, overwritten and truncated data goes; live data stays readable from another connection throughout and after reopen', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'aether-reclaim-'));
    const writer = Store.open(dir);
    const reader = Store.open(dir);
    // Three files fill more than one pack; small live files are spread through the packs.
    const big = randomBytes(PACK_BYTES_MAX);
    const keep = [randomBytes(70_000), randomBytes(70_000), randomBytes(70_000)];
    await writer.applyBatch(batch(file(2, 'big'), { t: 'write', ino: 2, offset: 0, data: big, timeMs: T }, file(10, 'keep0'), { t: 'write', ino: 10, offset: 0, data: keep[0]!, timeMs: T }));
    await writer.applyBatch(batch(file(3, 'big2'), { t: 'write', ino: 3, offset: 0, data: randomBytes(PACK_BYTES_MAX), timeMs: T }, { t: 'write', ino: 3, offset: 0, data: randomBytes(PACK_BYTES_MAX / 2), timeMs: T }));
    await writer.applyBatch(batch(file(11, 'keep1'), { t: 'write', ino: 11, offset: 0, data: keep[1]!, timeMs: T }, file(4, 'rewritten'), { t: 'write', ino: 4, offset: 0, data: randomBytes(8 << 20), timeMs: T }));
    // Rewritten twice more: the pack still being appended to is two-thirds dead.
    await writer.applyBatch(batch({ t: 'write', ino: 4, offset: 0, data: randomBytes(8 << 20), timeMs: T }, file(12, 'keep2'), { t: 'write', ino: 12, offset: 0, data: keep[2]!, timeMs: T }));
    await writer.applyBatch(batch({ t: 'write', ino: 4, offset: 0, data: randomBytes(8 << 20), timeMs: T }));
    // The reader has a descriptor of every pack open, as a mount that has read its files.
    for (const [i, ino] of [10, 11, 12].entries()) assert.ok(reader.read(ino, 0, 70_000).equals(keep[i]!));
    const live4 = writer.read(4, 0, 8 << 20);
    const before = packBytes(dir);
    assert.ok(before > 2 * PACK_BYTES_MAX, `${before}`);

    await writer.applyBatch(batch({ t: 'unlink', parent: ROOT_INO, name: 'big', timeMs: T }, { t: 'forget', ino: 2 }, { t: 'unlink', parent: ROOT_INO, name: 'big2', timeMs: T }, { t: 'forget', ino: 3 }));
    const r = await writer.reclaimSpace(Number.MAX_SAFE_INTEGER);
    reader.chunks.forgetPacks(r.deletedPacks);
    const after = packBytes(dir);
    assert.equal(r.packBytes, after);
    assert.ok(after < 10 << 20, `left ${after} bytes: about 8 MiB live, plus 210 KB`);
    assert.equal(r.freedBytes, before - after + r.copiedBytes);
    assert.ok(r.deletedPacks.length >= 2, JSON.stringify(r));
    assert.equal(r.more, false, 'no budget: nothing left for later');
    // The reader's rows point at packs that are gone: it finds the chunks where they went.
    for (const [i, ino] of [10, 11, 12].entries()) assert.ok(reader.read(ino, 0, 70_000).equals(keep[i]!), `keep${i}`);
    assert.ok(reader.read(4, 0, 8 << 20).equals(live4));
    writer.close();
    reader.close();
    const again = Store.open(dir);
    for (const [i, ino] of [10, 11, 12].entries()) assert.ok(again.read(ino, 0, 70_000).equals(keep[i]!));
    assert.ok(again.read(4, 0, 8 << 20).equals(live4));
    assert.equal(again.collectChunks(), 0, 'nothing dead is left');
    again.close();
  });

  it('a reader holding a descriptor of a rewritten pack still reads it until told, then lets go', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'aether-reclaim-'));
    const writer = Store.open(dir);
    const reader = Store.open(dir);
    const kept = randomBytes(100_000);
    await writer.applyBatch(batch(file(2, 'dead'), { t: 'write', ino: 2, offset: 0, data: randomBytes(PACK_BYTES_MAX), timeMs: T }, file(3, 'kept'), { t: 'write', ino: 3, offset: 0, data: kept, timeMs: T }));
    await writer.applyBatch(batch(file(4, 'next'), { t: 'write', ino: 4, offset: 0, data: Buffer.alloc(10, 1), timeMs: T }));
    assert.ok(reader.read(3, 0, 100_000).equals(kept));
    await writer.applyBatch(batch({ t: 'unlink', parent: ROOT_INO, name: 'dead', timeMs: T }, { t: 'forget', ino: 2 }));
    const r = await writer.reclaimSpace(Number.MAX_SAFE_INTEGER);
    assert.deepEqual(r.deletedPacks, [1]);
    assert.equal(r.copiedBytes, 100_000, 'the live file copied into the pack being appended to');
    const fds = () => readdirSync('/proc/self/fd').filter((fd) => { try { return statSync(`/proc/self/fd/${fd}`).nlink === 0; } catch { return false; } }).length;
    const held = fds();
    assert.ok(held >= 1, 'the deleted pack is still held open by the reader');
    assert.ok(reader.read(3, 0, 100_000).equals(kept));
    reader.chunks.forgetPacks(r.deletedPacks);
    assert.equal(fds(), held - 1, 'let go once told');
    assert.ok(reader.read(3, 0, 100_000).equals(kept), 'and then finds the chunk in its new pack');
    writer.close();
    reader.close();
  });

  it('a run whose copy budget ran out says more is left, and the next takes it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'aether-reclaim-'));
    const writer = Store.open(dir);
    const kept = [randomBytes(100_000), randomBytes(100_000)];
    for (const [i, data] of kept.entries()) {
      await writer.applyBatch(batch(file(20 + i, `dead${i}`), { t: 'write', ino: 20 + i, offset: 0, data: randomBytes(PACK_BYTES_MAX), timeMs: T }, file(30 + i, `kept${i}`), { t: 'write', ino: 30 + i, offset: 0, data, timeMs: T }));
    }
    await writer.applyBatch(batch(file(40, 'next'), { t: 'write', ino: 40, offset: 0, data: Buffer.alloc(10, 1), timeMs: T }));
    await writer.applyBatch(batch(...[0, 1].flatMap((i): Op[] => [{ t: 'unlink', parent: ROOT_INO, name: `dead${i}`, timeMs: T }, { t: 'forget', ino: 20 + i }])));
    const first = await writer.reclaimSpace(1);
    assert.deepEqual([first.copiedBytes, first.more], [100_000, true]);
    const second = await writer.reclaimSpace(1);
    assert.deepEqual([second.copiedBytes, second.more], [100_000, false]);
    for (const [i, data] of kept.entries()) assert.ok(writer.read(30 + i, 0, 100_000).equals(data));
    writer.close();
  });
});
