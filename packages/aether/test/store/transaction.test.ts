import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Store, type StoreExtension } from '../../src/store/store.js';
import { applyContent } from '../../src/tree/content.js';
import { applyOp } from '../../src/tree/apply.js';
import { ROOT_INO } from '../../src/tree/ops.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'aether-store-tx-'));
const T = 1000;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const EXT: StoreExtension = { name: 'test', migrations: ['CREATE TABLE notes (k TEXT PRIMARY KEY, v INTEGER NOT NULL)', 'ALTER TABLE notes ADD COLUMN w INTEGER'] };

describe('store transactions (what the hub commits with)', () => {
  it('an inode removed in a transaction is gone, whether it was committed before or made in the same one', async () => {
    const s = Store.open(tmp());
    const mk = (name: string, ino: number) => ({ t: 'mknode' as const, parent: ROOT_INO, name, ino, kind: 'file' as const, mode: 0o644, uid: 0, gid: 0, timeMs: T });
    await s.transaction((tx) => applyOp(tx.meta, mk('old', 2), { keepOrphans: false }));
    await s.transaction((tx) => {
      applyOp(tx.meta, mk('new', 3), { keepOrphans: false });
      applyOp(tx.meta, { t: 'write', ino: 3, offset: 0, data: Buffer.from('x'), timeMs: T }, { keepOrphans: false });
      for (const name of ['old', 'new']) applyOp(tx.meta, { t: 'unlink', parent: ROOT_INO, name, timeMs: T + 1 }, { keepOrphans: false });
    });
    assert.equal(s.getInode(2), undefined);
    assert.equal(s.getInode(3), undefined);
    assert.deepEqual(s.blocksOf(3), []);
    assert.equal(s.getInode(ROOT_INO)?.mtimeMs, T + 1);
    s.close();
  });
  it('commits tree changes, chunks referenced by hash and extension rows together', async () => {
    const dir = tmp();
    let s = Store.open(dir, undefined, { extensions: [EXT] });
    const a = Buffer.alloc(65_536, 1);
    const b = Buffer.from('tail');
    const chunks = new Map([
      [sha(a), a],
      [sha(b), b],
    ]);
    await s.transaction((tx) => {
      applyOp(tx.meta, { t: 'mknode', parent: ROOT_INO, name: 'f', ino: 2, kind: 'file', mode: 0o644, uid: 0, gid: 0, timeMs: T }, { keepOrphans: false });
      assert.equal(applyContent(tx.meta, { t: 'content', ino: 2, size: 65_536 + 4, blocks: [[0, sha(a)], [1, sha(b)]], timeMs: T }), true);
      tx.db.prepare('INSERT INTO notes (k, v) VALUES (?, ?)').run('x', 7);
    }, chunks);
    s.close();
    s = Store.open(dir, undefined, { extensions: [EXT] });
    assert.ok(s.read(2, 0, 70_000).equals(Buffer.concat([a, b])));
    assert.deepEqual(s.blocksOf(2), [[0, sha(a)], [1, sha(b)]]);
    assert.ok(s.hasChunk(sha(a)));
    const r = s.openReader();
    assert.deepEqual(r.prepare('SELECT k, v, w FROM notes').all(), [{ k: 'x', v: 7, w: null }]);
    r.close();
    s.close();
  });

  it('a transaction that throws leaves nothing behind: no rows, no chunk index entries', async () => {
    const s = Store.open(tmp(), undefined, { extensions: [EXT] });
    const a = Buffer.from('never');
    await assert.rejects(
      s.transaction((tx) => {
        applyOp(tx.meta, { t: 'mknode', parent: ROOT_INO, name: 'f', ino: 2, kind: 'file', mode: 0o644, uid: 0, gid: 0, timeMs: T }, { keepOrphans: false });
        tx.db.prepare('INSERT INTO notes (k, v) VALUES (?, ?)').run('x', 1);
        throw new Error('boom');
      }, new Map([[sha(a), a]])),
      /boom/,
    );
    assert.equal(s.getInode(2), undefined);
    assert.equal(s.hasChunk(sha(a)), false);
    const r = s.openReader();
    assert.deepEqual(r.prepare('SELECT * FROM notes').all(), []);
    r.close();
    // The store is still usable afterwards.
    await s.transaction((tx) => tx.db.prepare('INSERT INTO notes (k, v) VALUES (?, ?)').run('y', 2));
    s.close();
  });

  it('a content op on a directory changes nothing', async () => {
    const s = Store.open(tmp());
    const ok = await s.transaction((tx) => applyContent(tx.meta, { t: 'content', ino: ROOT_INO, size: 3, blocks: [], timeMs: T }));
    assert.equal(ok, false);
    assert.equal(s.getInode(ROOT_INO)?.size, 0);
    s.close();
  });

  it('refuses a database whose extension schema is newer than the code', async () => {
    const dir = tmp();
    Store.open(dir, undefined, { extensions: [EXT] }).close();
    assert.throws(() => Store.open(dir, undefined, { extensions: [{ name: 'test', migrations: EXT.migrations.slice(0, 1) }] }), (e: Error & { code?: string }) => e.code === 'STORE_CORRUPT');
  });
});
