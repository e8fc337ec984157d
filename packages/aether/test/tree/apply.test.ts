import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { applyOp, TreeError } from '../../src/tree/apply.js';
import { MemoryMeta } from '../../src/tree/meta.js';
import { RENAME_EXCHANGE, RENAME_NOREPLACE, ROOT_INO, type Op } from '../../src/tree/ops.js';
import { decodeOp, encodeOp } from '../../src/tree/ops.js';

function tree(): MemoryMeta {
  const m = new MemoryMeta();
  m.putInode({ ino: ROOT_INO, kind: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0, nlink: 2, atimeMs: 0, mtimeMs: 0, ctimeMs: 0 });
  return m;
}
const T = 1000;
const mk = (parent: number, name: string, ino: number, kind: 'file' | 'dir' | 'symlink' = 'file', target?: string): Op => ({ t: 'mknode', parent, name, ino, kind, mode: 0o644, uid: 5, gid: 6, timeMs: T, ...(target ? { target } : {}) });
const apply = (m: MemoryMeta, op: Op) => applyOp(m, op, { keepOrphans: false });
function errnoOf(m: MemoryMeta, op: Op): string {
  try {
    apply(m, op);
  } catch (err) {
    assert.ok(err instanceof TreeError);
    return err.errno;
  }
  return 'ok';
}

describe('tree ops', () => {
  it('mknode creates with owner, mode and link counts; EEXIST on a taken name', () => {
    const m = tree();
    apply(m, mk(ROOT_INO, 'd', 2, 'dir'));
    apply(m, mk(2, 'f', 3));
    assert.equal(m.getInode(ROOT_INO)?.nlink, 3);
    assert.equal(m.getInode(2)?.nlink, 2);
    assert.deepEqual([m.getInode(3)?.uid, m.getInode(3)?.gid, m.getInode(3)?.mode], [5, 6, 0o644]);
    assert.equal(errnoOf(m, mk(2, 'f', 4)), 'EEXIST');
    assert.equal(errnoOf(m, mk(3, 'x', 4)), 'ENOTDIR');
    assert.equal(errnoOf(m, mk(99, 'x', 4)), 'ENOENT');
    assert.equal(errnoOf(m, mk(2, 'x'.repeat(256), 4)), 'ENAMETOOLONG');
    assert.equal(errnoOf(m, mk(2, 'a/b', 4)), 'EINVAL');
  });
  it('symlink size is the target length', () => {
    const m = tree();
    apply(m, mk(ROOT_INO, 'l', 2, 'symlink', 'target/path'));
    assert.equal(m.getInode(2)?.size, 11);
    assert.equal(m.getInode(2)?.target, 'target/path');
  });
  it('hard links count, and unlink drops the inode with its last name', () => {
    const m = tree();
    apply(m, mk(ROOT_INO, 'a', 2));
    apply(m, { t: 'link', parent: ROOT_INO, name: 'b', ino: 2, timeMs: T });
    assert.equal(m.getInode(2)?.nlink, 2);
    apply(m, { t: 'unlink', parent: ROOT_INO, name: 'a', timeMs: T });
    assert.equal(m.getInode(2)?.nlink, 1);
    apply(m, { t: 'unlink', parent: ROOT_INO, name: 'b', timeMs: T });
    assert.equal(m.getInode(2), undefined);
  });
  it('keepOrphans keeps an unlinked inode until forget', () => {
    const m = tree();
    apply(m, mk(ROOT_INO, 'a', 2));
    applyOp(m, { t: 'unlink', parent: ROOT_INO, name: 'a', timeMs: T }, { keepOrphans: true });
    assert.equal(m.getInode(2)?.nlink, 0);
    apply(m, { t: 'forget', ino: 2 });
    assert.equal(m.getInode(2), undefined);
  });
  it('unlink, rmdir and link errnos', () => {
    const m = tree();
    apply(m, mk(ROOT_INO, 'd', 2, 'dir'));
    apply(m, mk(2, 'f', 3));
    assert.equal(errnoOf(m, { t: 'unlink', parent: ROOT_INO, name: 'd', timeMs: T }), 'EISDIR');
    assert.equal(errnoOf(m, { t: 'rmdir', parent: ROOT_INO, name: 'd', timeMs: T }), 'ENOTEMPTY');
    assert.equal(errnoOf(m, { t: 'rmdir', parent: 2, name: 'f', timeMs: T }), 'ENOTDIR');
    assert.equal(errnoOf(m, { t: 'unlink', parent: 2, name: 'nope', timeMs: T }), 'ENOENT');
    assert.equal(errnoOf(m, { t: 'link', parent: ROOT_INO, name: 'dl', ino: 2, timeMs: T }), 'EPERM');
    apply(m, { t: 'unlink', parent: 2, name: 'f', timeMs: T });
    apply(m, { t: 'rmdir', parent: ROOT_INO, name: 'd', timeMs: T });
    assert.equal(m.getInode(ROOT_INO)?.nlink, 2);
  });
  it('rename over an existing file replaces it; rename of directories fixes link counts', () => {
    const m = tree();
    apply(m, mk(ROOT_INO, 'a', 2));
    apply(m, mk(ROOT_INO, 'b', 3));
    apply(m, { t: 'rename', parent: ROOT_INO, name: 'a', newParent: ROOT_INO, newName: 'b', flags: 0, timeMs: T });
    assert.equal(m.lookup(ROOT_INO, 'b'), 2);
    assert.equal(m.lookup(ROOT_INO, 'a'), undefined);
    assert.equal(m.getInode(3), undefined);
    apply(m, mk(ROOT_INO, 'd1', 4, 'dir'));
    apply(m, mk(ROOT_INO, 'd2', 5, 'dir'));
    apply(m, { t: 'rename', parent: ROOT_INO, name: 'd1', newParent: 5, newName: 'inner', flags: 0, timeMs: T });
    assert.equal(m.getInode(ROOT_INO)?.nlink, 3);
    assert.equal(m.getInode(5)?.nlink, 3);
    assert.equal(m.parentOf(4), 5);
  });
  it('rename errnos: dir into itself, dir over file, file over dir, non-empty target', () => {
    const m = tree();
    apply(m, mk(ROOT_INO, 'd', 2, 'dir'));
    apply(m, mk(2, 'sub', 3, 'dir'));
    apply(m, mk(ROOT_INO, 'f', 4));
    apply(m, mk(ROOT_INO, 'e', 5, 'dir'));
    apply(m, mk(5, 'x', 6));
    const r = (name: string, newParent: number, newName: string, flags = 0): Op => ({ t: 'rename', parent: ROOT_INO, name, newParent, newName, flags, timeMs: T });
    assert.equal(errnoOf(m, r('d', 3, 'moved')), 'EINVAL');
    assert.equal(errnoOf(m, r('d', 2, 'self')), 'EINVAL');
    assert.equal(errnoOf(m, r('d', ROOT_INO, 'f')), 'ENOTDIR');
    assert.equal(errnoOf(m, r('f', ROOT_INO, 'd')), 'EISDIR');
    assert.equal(errnoOf(m, r('d', ROOT_INO, 'e')), 'ENOTEMPTY');
    assert.equal(errnoOf(m, r('nope', ROOT_INO, 'z')), 'ENOENT');
    assert.equal(errnoOf(m, r('f', ROOT_INO, 'd', RENAME_NOREPLACE)), 'EEXIST');
    assert.equal(errnoOf(m, r('f', ROOT_INO, 'zz', RENAME_EXCHANGE)), 'ENOENT');
    assert.equal(m.lookup(ROOT_INO, 'd'), 2, 'failed renames change nothing');
  });
  it('RENAME_EXCHANGE swaps two names', () => {
    const m = tree();
    apply(m, mk(ROOT_INO, 'a', 2));
    apply(m, mk(ROOT_INO, 'd', 3, 'dir'));
    apply(m, mk(3, 'b', 4));
    apply(m, { t: 'rename', parent: ROOT_INO, name: 'a', newParent: 3, newName: 'b', flags: RENAME_EXCHANGE, timeMs: T });
    assert.equal(m.lookup(ROOT_INO, 'a'), 4);
    assert.equal(m.lookup(3, 'b'), 2);
  });
  it('write grows size; truncate sets it; setattr changes only what it names', () => {
    const m = tree();
    apply(m, mk(ROOT_INO, 'f', 2));
    apply(m, { t: 'write', ino: 2, offset: 5_000_000_000, data: Buffer.from('x'), timeMs: 2000 });
    assert.equal(m.getInode(2)?.size, 5_000_000_001);
    apply(m, { t: 'truncate', ino: 2, size: 10, timeMs: 3000 });
    assert.equal(m.getInode(2)?.size, 10);
    apply(m, { t: 'setattr', ino: 2, mode: 0o600, timeMs: 4000 });
    assert.deepEqual([m.getInode(2)?.mode, m.getInode(2)?.uid, m.getInode(2)?.mtimeMs, m.getInode(2)?.ctimeMs], [0o600, 5, 3000, 4000]);
    assert.equal(errnoOf(m, { t: 'write', ino: ROOT_INO, offset: 0, data: Buffer.from('x'), timeMs: T }), 'EISDIR');
  });
  it('ops survive the journal encoding, data included', () => {
    const ops: Op[] = [mk(ROOT_INO, 'ünï', 2), { t: 'write', ino: 2, offset: 7, data: Buffer.from([0, 1, 2, 255]), timeMs: T }, { t: 'forget', ino: 2 }];
    for (const op of ops) assert.deepEqual(decodeOp(encodeOp(op)), op);
  });
});
