import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { applyOp } from '@aether/core/tree/apply';
import { MemoryMeta } from '@aether/core/tree/meta';
import type { Op } from '@aether/core/tree/ops';
import { alignedNothing, alignTree } from '../../src/mount/view-align.js';

const ROOT = 1;

function treeOf(ops: Op[], keepOrphans = false): MemoryMeta {
  const t = new MemoryMeta();
  t.putInode({ ino: ROOT, kind: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0, nlink: 2, atimeMs: 0, mtimeMs: 0, ctimeMs: 0 });
  for (const op of ops) applyOp(t, op, { keepOrphans });
  return t;
}

const mk = (name: string, ino: number, parent = ROOT, kind: 'file' | 'dir' = 'file'): Op => ({ t: 'mknode', parent, name, ino, kind, mode: 0o644, uid: 0, gid: 0, timeMs: 1 });
const rm = (name: string, parent = ROOT): Op => ({ t: 'unlink', parent, name, timeMs: 2 });
const mv = (name: string, newName: string, parent = ROOT, newParent = ROOT): Op => ({ t: 'rename', parent, name, newParent, newName, flags: 0, timeMs: 3 });
const ln = (ino: number, name: string, parent = ROOT): Op => ({ t: 'link', ino, parent, name, timeMs: 4 });
const write = (ino: number, size: number, timeMs = 5): Op => ({ t: 'write', ino, offset: 0, data: Buffer.alloc(size), timeMs });

/** Every path with its inode, kind, size and link count: what a mount lists. */
function listing(t: MemoryMeta, dir = ROOT, prefix = ''): string[] {
  const out: string[] = [];
  for (const [name, ino] of [...(t.entries(dir) ?? [])].sort(([a], [b]) => a.localeCompare(b))) {
    const i = t.getInode(ino);
    out.push(`${prefix}${name}:${ino}:${i?.kind}:${i?.size}:${i?.nlink}`);
    if (i?.kind === 'dir') out.push(...listing(t, ino, `${prefix}${name}/`));
  }
  return out;
}

const nothingOpen = (): boolean => false;

describe('aligning a view with the replica (nothing pending)', () => {
  it('an identical tree changes nothing', () => {
    const ops = [mk('d', 10, ROOT, 'dir'), mk('f', 11, 10), write(11, 30), ln(11, 'g')];
    const view = treeOf(ops);
    assert.ok(alignedNothing(alignTree(view, treeOf(ops), nothingOpen)));
  });

  it('names the hub has and the view lacks come back (a conflict copy a later local op dropped here), names it lacks go, inodes follow', () => {
    const committed = treeOf([mk('f3', 11), write(11, 7), mk('f3.conflict', 12), write(12, 9), mk('d', 20, ROOT, 'dir'), mk('x', 21, 20)]);
    // The view lost 12 (a later local op removed it here only), shows 11 with a stale size, has a
    // name the hub never made and x under the wrong directory.
    const view = treeOf([mk('f3', 11), write(11, 3), mk('d', 20, ROOT, 'dir'), mk('e', 22, ROOT, 'dir'), mk('x', 21, 22), mk('stray', 23)]);
    const r = alignTree(view, committed, nothingOpen);
    assert.deepEqual(listing(view), listing(committed));
    assert.deepEqual(r.contentChanged.sort(), [11, 12], 'stale sizes: their clean cached data goes');
    assert.deepEqual(r.dropped.sort(), [22, 23]);
    assert.equal(view.getInode(22), undefined);
    assert.equal(view.parentOf(20), ROOT);
    // The moved directory's parent link follows: x is found under d, d's parent is the root.
    assert.equal(view.lookup(20, 'x'), 21);
  });

  it('a directory moved under another one on the hub (renames on both sides) ends up where the hub has it, whichever is visited first', () => {
    for (const order of [
      ['a', 'b'],
      ['b', 'a'],
    ]) {
      const dirs = order.map((n, i) => mk(n, 30 + i, ROOT, 'dir'));
      const base = [...dirs, mk('m', 40, ROOT, 'dir'), mk('y', 41, 40)];
      const committed = treeOf([...base, mv('m', 'm', ROOT, 31)]);
      const view = treeOf([...base, mv('m', 'm', ROOT, 30)]);
      alignTree(view, committed, nothingOpen);
      assert.deepEqual(listing(view), listing(committed));
      assert.equal(view.parentOf(40), 31);
    }
  });

  it('a file open here that the hub no longer has stays without a name; a hard link count follows the hub', () => {
    const committed = treeOf([mk('f', 11), ln(11, 'g'), mk('open', 12), rm('open')]);
    const view = treeOf([mk('f', 11), mk('open', 12)]);
    const r = alignTree(view, committed, (ino) => ino === 12);
    assert.deepEqual(listing(view), listing(committed));
    assert.equal(view.getInode(11)?.nlink, 2);
    assert.equal(view.getInode(12)?.nlink, 0, 'kept, nameless, for its descriptors');
    assert.deepEqual(r.dropped, []);
  });

  it('directories the hub removed go, also one that held the hidden name of a file open here (the Vfs finds it by name)', () => {
    const view = treeOf([mk('keep', 11), mk('p', 20, ROOT, 'dir'), mk('d', 21, 20, 'dir'), mk('gone', 22, 21)]);
    const r = alignTree(view, treeOf([mk('keep', 11)]), (ino) => ino === 21);
    assert.deepEqual(listing(view), ['keep:11:file:0:1']);
    assert.deepEqual(r.dropped.sort(), [20, 21, 22]);
  });

  it('directory times alone are set without counting as a repair; a directory\'s mode is one', () => {
    const committed = treeOf([mk('d', 20, ROOT, 'dir')]);
    const view = treeOf([mk('d', 20, ROOT, 'dir')]);
    view.putInode({ ...view.getInode(ROOT)!, mtimeMs: 7 });
    const r = alignTree(view, committed, nothingOpen);
    assert.deepEqual([r.dirTimes, r.changed], [[ROOT], []]);
    assert.ok(alignedNothing(r));
    assert.equal(view.getInode(ROOT)?.mtimeMs, committed.getInode(ROOT)?.mtimeMs);
    view.putInode({ ...view.getInode(20)!, mode: 0o700 });
    assert.deepEqual(alignTree(view, committed, nothingOpen).changed, [20]);
  });

  it('attributes follow the hub except the access time', () => {
    const committed = treeOf([mk('f', 11), write(11, 10, 99)]);
    const view = treeOf([mk('f', 11), write(11, 10, 50)]);
    view.putInode({ ...view.getInode(11)!, atimeMs: 1234, mode: 0o600 });
    const r = alignTree(view, committed, nothingOpen);
    assert.deepEqual(r.changed, [11]);
    assert.deepEqual(r.contentChanged, [11], 'same size, another mtime: another version');
    assert.equal(view.getInode(11)?.mtimeMs, 99);
    assert.equal(view.getInode(11)?.mode, 0o644);
    assert.equal(view.getInode(11)?.atimeMs, 1234);
  });
});
