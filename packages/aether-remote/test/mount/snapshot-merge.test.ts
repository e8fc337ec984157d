import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { applyOp } from '@aether/core/tree/apply';
import { MemoryMeta } from '@aether/core/tree/meta';
import type { Op } from '@aether/core/tree/ops';
import { mergeSnapshot, touchedBy } from '../../src/mount/snapshot-merge.js';

const ROOT = 1;
const NONE = { keys: new Set<string>(), inos: new Set<number>() };

function treeOf(ops: Op[]): MemoryMeta {
  const t = new MemoryMeta();
  t.putInode({ ino: ROOT, kind: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0, nlink: 2, atimeMs: 0, mtimeMs: 0, ctimeMs: 0 });
  for (const op of ops) applyOp(t, op, { keepOrphans: false });
  return t;
}

const mk = (name: string, ino: number, parent = ROOT, kind: 'file' | 'dir' = 'file'): Op => ({ t: 'mknode', parent, name, ino, kind, mode: 0o644, uid: 0, gid: 0, timeMs: 1 });
const rm = (name: string, parent = ROOT): Op => ({ t: 'unlink', parent, name, timeMs: 2 });
const mv = (name: string, newName: string): Op => ({ t: 'rename', parent: ROOT, name, newParent: ROOT, newName, flags: 0, timeMs: 3 });
const write = (ino: number, size: number): Op => ({ t: 'write', ino, offset: 0, data: Buffer.alloc(size), timeMs: 4 });

function names(t: MemoryMeta, dir = ROOT): string[] {
  return [...(t.entries(dir) ?? [])].map(([n]) => n).sort();
}

describe('snapshot merge', () => {
  it('takes what other mounts changed: names added, removed, renamed, contents', () => {
    const committed: Op[] = [mk('keep', 10), mk('gone', 11), mk('ren', 12), mk('change', 13)];
    const base = treeOf(committed);
    const next = treeOf([...committed, rm('gone'), mv('ren', 'renamed'), write(13, 500), mk('new', 14)]);
    const view = treeOf(committed);
    const { removed } = mergeSnapshot(view, base, next, NONE);
    assert.deepEqual(names(view), ['change', 'keep', 'new', 'renamed']);
    assert.equal(view.getInode(13)?.size, 500);
    assert.deepEqual(removed, [11]);
    assert.equal(view.getInode(11), undefined);
  });

  it('a file the hub deleted that is open here stays without a name (its descriptors read on); others go', () => {
    const committed: Op[] = [mk('open', 10), mk('closed', 11)];
    const base = treeOf(committed);
    const next = treeOf([...committed, rm('open'), rm('closed')]);
    const view = treeOf(committed);
    const { removed } = mergeSnapshot(view, base, next, NONE, (ino) => ino === 10);
    assert.deepEqual(names(view), []);
    assert.deepEqual(removed, [11]);
    assert.equal(view.getInode(10)?.nlink, 0, 'kept, nameless, until it is closed');
    assert.equal(view.getInode(11), undefined);
  });

  it('keeps this mount\'s pending changes: a local create, a local delete, a local write', () => {
    const committed: Op[] = [mk('a', 10), mk('b', 11), mk('c', 12)];
    const base = treeOf(committed);
    const next = treeOf([...committed, write(10, 7), write(12, 9)]);
    const view = treeOf([...committed, mk('local', 2 ** 32 + 1), rm('b'), write(12, 3)]);
    mergeSnapshot(view, base, next, NONE);
    assert.deepEqual(names(view), ['a', 'c', 'local']);
    assert.equal(view.getInode(10)?.size, 7, 'unchanged here: the remote content');
    assert.equal(view.getInode(12)?.size, 3, 'written here: the pending local write stays');
  });

  it('does not bring back what the batch in flight created and a later local op removed', () => {
    const own = 2 ** 32 + 1;
    const base = treeOf([]);
    // The hub committed the batch in flight (create f0) before the snapshot; locally f0 was renamed since.
    const inFlight: Op[] = [mk('f0', own)];
    const next = treeOf(inFlight);
    const view = treeOf([...inFlight, mv('f0', 'r5')]);
    mergeSnapshot(view, base, next, touchedBy([{ t: 'mknode', parent: ROOT, name: 'f0', ino: own, kind: 'file', mode: 0o644, uid: 0, gid: 0, timeMs: 1 }]));
    assert.deepEqual(names(view), ['r5']);
    assert.equal(view.getInode(own)?.nlink, 1);
  });
});
