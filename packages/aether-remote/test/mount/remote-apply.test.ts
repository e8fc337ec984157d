/**
 * Remote changes to a file this mount is editing (bridge mode): kept from the view until the
 * local changes are acknowledged, then shown as the hub has them.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryMeta } from '@aether/core/tree/meta';
import { ROOT_INO } from '@aether/core/tree/ops';
import type { Inode } from '@aether/core/tree/inode';
import { RemoteApply, type CommittedTree } from '../../src/mount/remote-apply.js';

/** The replica as the resolution code reads it. */
const committedOf = (t: MemoryMeta): CommittedTree => ({
  getInode: (i) => t.getInode(i),
  lookup: (p, n) => t.lookup(p, n),
  children: (d) => [...(t.entries(d) ?? [])],
  nameOf: (ino) => {
    for (const [dir] of t.inodes) for (const [name, i] of t.entries(dir) ?? []) if (i === ino) return { parent: dir, name };
    return undefined;
  },
});

const file = (ino: number, size: number): Inode => ({ ino, kind: 'file', mode: 0o644, uid: 0, gid: 0, size, nlink: 1, atimeMs: 1, mtimeMs: 1, ctimeMs: 1 });

function setup() {
  const trees = [new MemoryMeta(), new MemoryMeta(), new MemoryMeta()];
  for (const t of trees) {
    t.putInode({ ...file(ROOT_INO, 0), kind: 'dir', mode: 0o755, nlink: 2 });
    t.putInode(file(5, 31));
    t.addEntry(ROOT_INO, 'x', 5);
  }
  const [view, shipped, replica] = trees as [MemoryMeta, MemoryMeta, MemoryMeta];
  const edited = new Set<number>();
  const invalidated: number[] = [];
  const cache = { invalidate: async (ino: number) => void invalidated.push(ino), remove: async () => {} };
  const open = new Set<number>();
  const removed = new Set<number>();
  const remote = new RemoteApply({ view, shipped, cache, log: () => undefined, editedLocally: (ino) => edited.has(ino), inUse: (ino) => edited.has(ino) || open.has(ino), removedHere: (ino) => removed.has(ino), hub: replica });
  return { view, shipped, replica, edited, open, removed, invalidated, remote };
}

describe('RemoteApply: remote content of a file edited here', () => {
  it('is kept from the view while local changes are unacknowledged, and shown once they are (also when no conflict resolution comes)', () => {
    const { view, shipped, replica, edited, invalidated, remote } = setup();
    edited.add(5);
    // Another mount's edit, made on top of this mount's version, reaches the replica and the feed.
    replica.putInode({ ...file(5, 45), mtimeMs: 9, ctimeMs: 9 });
    remote.apply([{ t: 'content', ino: 5, size: 45, blocks: [], timeMs: 9 }]);
    assert.equal(view.getInode(5)?.size, 31, 'the view keeps this mount\'s version');
    assert.equal(shipped.getInode(5)?.size, 45, 'the shipped tree follows the hub');
    assert.deepEqual(invalidated, []);
    // Acknowledged: the note goes, and the view shows the hub's version.
    edited.delete(5);
    remote.settled(5, committedOf(replica));
    assert.equal(view.getInode(5)?.size, 45);
    assert.equal(view.getInode(5)?.mtimeMs, 9);
    assert.deepEqual(invalidated, [5], 'this mount\'s cached version goes');
    remote.settled(5, committedOf(replica));
    assert.deepEqual(invalidated, [5], 'once');
  });

  it('a conflict copy made while later local changes are still unacknowledged leaves the file as this mount shows it until they are', () => {
    const { view, replica, edited, remote } = setup();
    edited.add(5);
    replica.putInode(file(5, 1));
    replica.putInode(file(9, 31));
    replica.addEntry(ROOT_INO, 'x.conflict', 9);
    remote.resolve([{ jseq: 3, kind: 'conflict-copy', ino: 5, copyIno: 9, parent: ROOT_INO, name: 'x.conflict' }], committedOf(replica), new Map());
    assert.equal(view.getInode(5)?.size, 31, 'still this mount\'s version: its later changes ship to the copy');
    assert.equal(view.lookup(ROOT_INO, 'x.conflict'), 9);
    edited.delete(5);
    remote.settled(5, committedOf(replica));
    assert.equal(view.getInode(5)?.size, 1, 'then the hub\'s');
  });
});

describe('RemoteApply: a removal whose name holds another inode here', () => {
  // The hub's x (inode 5) was renamed to y and removed there; y holds this mount's own 9 here.
  for (const how of ['unlink', 'rename over'] as const) {
    for (const used of [false, true]) {
      it(`${how}: the hub no longer has the file, so its names here go${used ? '; open here, it stays without a name' : ''}`, () => {
        const { view, shipped, replica, open, remote } = setup();
        for (const t of [view, shipped]) {
          t.putInode(file(9, 3));
          t.addEntry(ROOT_INO, 'y', 9);
        }
        replica.removeEntry(ROOT_INO, 'x');
        replica.deleteInode(5);
        if (used) open.add(5);
        const op = how === 'unlink' ? { t: 'unlink' as const, parent: ROOT_INO, name: 'y', ino: 5, timeMs: 1 } : { t: 'rename' as const, parent: ROOT_INO, name: 'z', ino: 7, newParent: ROOT_INO, newName: 'y', dstIno: 5, flags: 0, timeMs: 1 };
        remote.apply([op]);
        assert.equal(view.lookup(ROOT_INO, 'x'), undefined, 'x goes from the view');
        assert.equal(view.lookup(ROOT_INO, 'y'), 9, 'y keeps this mount\'s file');
        assert.equal(view.getInode(5)?.nlink, used ? 0 : undefined);
        assert.equal(shipped.lookup(ROOT_INO, 'x'), undefined);
        assert.equal(shipped.getInode(5), undefined);
      });
    }
  }

  it('a directory\'s worth moved here while the hub removed them: every one goes, open ones kept without a name', () => {
    const { view, shipped, replica, open, remote } = setup();
    const inos = [20, 21, 22, 23];
    for (const t of [view, shipped, replica]) t.putInode({ ...file(ROOT_INO, 0), ino: 10, kind: 'dir', mode: 0o755, nlink: 2 });
    for (const t of [view, shipped]) t.putInode({ ...file(ROOT_INO, 0), ino: 11, kind: 'dir', mode: 0o755, nlink: 2 });
    for (const t of [view, shipped]) t.addEntry(ROOT_INO, 'e', 11);
    for (const ino of inos) {
      // mv d/* e/ here (unshipped); at the hub they were removed from d.
      for (const t of [view, shipped]) {
        t.putInode(file(ino, 1));
        t.addEntry(11, `f${ino}`, ino);
      }
    }
    open.add(22);
    remote.apply(inos.map((ino) => ({ t: 'unlink' as const, parent: 10, name: `f${ino}`, ino, timeMs: 1 })));
    assert.deepEqual([...(view.entries(11) ?? [])], []);
    assert.deepEqual([...(shipped.entries(11) ?? [])], []);
    assert.deepEqual(inos.map((ino) => view.getInode(ino)?.nlink), [undefined, undefined, 0, undefined]);
  });

  it('a file the hub still has (another of its names removed) keeps its names here', () => {
    const { view, shipped, remote } = setup();
    for (const t of [view, shipped]) {
      t.putInode(file(9, 3));
      t.addEntry(ROOT_INO, 'y', 9);
    }
    remote.apply([{ t: 'unlink', parent: ROOT_INO, name: 'y', ino: 5, timeMs: 1 }]);
    assert.equal(view.lookup(ROOT_INO, 'x'), 5);
    assert.equal(view.getInode(5)?.nlink, 1);
  });
});

/** At the hub, another mount's x.tmp (inode 6) replaced x (inode 5) by a rename; the feed brings it. */
function otherMountSavesX(replica: MemoryMeta, remote: RemoteApply): void {
  replica.removeEntry(ROOT_INO, 'x');
  replica.deleteInode(5);
  replica.putInode(file(6, 3));
  replica.addEntry(ROOT_INO, 'x', 6);
  remote.apply([{ t: 'rename', parent: ROOT_INO, name: 'x.tmp', ino: 6, newParent: ROOT_INO, newName: 'x', dstIno: 5, flags: 0, timeMs: 2 }]);
}

describe('RemoteApply: another mount saving a file by rename over a name this mount saves too', () => {
  it('a remote rename onto a name this mount has changed takes the file off its old name; the resolution names it', () => {
    const { view, shipped, replica, remote } = setup();
    // The other mount made x.tmp (inode 6), seen here, and renamed it over x (below).
    for (const t of [view, shipped]) {
      t.putInode(file(6, 3));
      t.addEntry(ROOT_INO, 'x.tmp', 6);
    }
    // Meanwhile this mount saved its own file (inode 9) over x, not yet acknowledged.
    view.removeEntry(ROOT_INO, 'x');
    view.deleteInode(5);
    view.putInode(file(9, 4));
    view.addEntry(ROOT_INO, 'x', 9);
    otherMountSavesX(replica, remote);
    assert.equal(view.lookup(ROOT_INO, 'x'), 9, 'x shows this mount\'s version until the hub resolves it');
    assert.equal(view.lookup(ROOT_INO, 'x.tmp'), undefined, 'the other mount\'s temporary name is gone, as at the hub');
    assert.equal(view.getInode(6)?.nlink, 0);
    // The hub gave this mount's file the conflict name: the view shows both in one step.
    replica.putInode(file(9, 4));
    replica.addEntry(ROOT_INO, 'x.conflict', 9);
    remote.resolve([{ jseq: 4, kind: 'renamed', ino: 9, parent: ROOT_INO, name: 'x.conflict', wanted: 'x' }], committedOf(replica), new Map());
    assert.deepEqual([view.lookup(ROOT_INO, 'x'), view.lookup(ROOT_INO, 'x.conflict'), view.getInode(6)?.nlink], [6, 9, 1]);
  });

  it('a remote rename over a name that does not apply here removes the old file and shows the hub\'s new one in the same step', () => {
    const { view, replica, remote } = setup();
    // Inode 6 was made under a name this view never had.
    otherMountSavesX(replica, remote);
    assert.equal(view.lookup(ROOT_INO, 'x'), 6, 'the name is never empty here');
    assert.equal(view.getInode(6)?.size, 3);
    assert.equal(view.getInode(5), undefined);
  });

  it('... but not with a file this mount removed itself (its unlink, not yet acknowledged, removes it at the hub too)', () => {
    const { view, replica, removed, remote } = setup();
    removed.add(6);
    otherMountSavesX(replica, remote);
    assert.equal(view.lookup(ROOT_INO, 'x'), undefined);
    assert.equal(view.getInode(6), undefined);
  });
});
