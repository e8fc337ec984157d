import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { BridgeClient, UploadResult } from '../../src/bridge/client.js';
import type { Hub } from '../../src/hub/hub.js';
import type { WireEntry, WireOp } from '../../src/protocol/wire-ops.js';
import { connectClient, content, inodeOf, listDir, metricValue, readFeedUntil, readFile, ROOT, startHub, type StoreKind, STORES } from './helpers.js';
import { Replica } from './replica.js';

const NOW = Date.UTC(2026, 10, 22, 1, 2, 3);
const STAMP = '20261122T010203Z';

/** A mount as the hub sees it: ops with journal sequences, inodes from its own range. */
class TestMount {
  seq = 0;
  private ino = 0;
  constructor(readonly c: BridgeClient) {}
  get id(): string {
    return this.c.mountId;
  }
  newIno(): number {
    return this.c.welcome!.inoBase + ++this.ino;
  }
  /** Uploads ops (content given as data) made on a view at hub sequence `baseSeq`. */
  async up(baseSeq: number, ops: (WireOp | { write: number; data: Buffer })[]): Promise<UploadResult> {
    const entries: WireEntry[] = [];
    const chunks = new Map<string, Buffer>();
    for (const op of ops) {
      if ('write' in op) {
        const b = content(++this.seq, op.write, op.data, 3000);
        entries.push(b.entry);
        for (const [h, d] of b.chunks) chunks.set(h, d);
      } else entries.push({ seq: ++this.seq, op });
    }
    return this.c.upload({ upToSeq: this.seq, baseSeq, entries, chunks });
  }
}

const file = (parent: number, name: string, ino: number): WireOp => ({ t: 'mknode', parent, name, ino, kind: 'file', mode: 0o640, uid: 1000, gid: 1000, timeMs: 1000 });
const dir = (parent: number, name: string, ino: number): WireOp => ({ t: 'mknode', parent, name, ino, kind: 'dir', mode: 0o755, uid: 1000, gid: 1000, timeMs: 1000 });
const text = (s: string) => Buffer.from(s);
/** Content spanning several blocks, so a conflict copy must hold all of it, not a diff. */
const big = (tag: string) => Buffer.concat([Buffer.alloc(150_000, tag.charCodeAt(0)), text(tag)]);

async function setup(kind: StoreKind): Promise<{ hub: Hub; a: TestMount; b: TestMount; replica: () => Promise<void> }> {
  const { hub } = await startHub({ nowMs: () => NOW }, kind);
  const a = new TestMount(await connectClient(hub.url));
  const b = new TestMount(await connectClient(hub.url));
  // A third mount follows the changefeed the whole time: its view must end up identical to the hub's.
  const watcher = await connectClient(hub.url, { followFrom: 0 });
  const feed = watcher.feed();
  const view = new Replica();
  after(async () => {
    await Promise.all([a.c.close(), b.c.close(), watcher.close()]);
    await hub.close();
  });
  const replica = async () => {
    for (const e of await readFeedUntil(feed, (e) => (e.kind === 'entry' && e.entry.hubSeq === hub.hubSeq) || (e.kind === 'snapshot-end' && e.hubSeq === hub.hubSeq))) view.apply(e);
    await view.assertEquals(hub);
  };
  return { hub, a, b, replica };
}

for (const { kind, skip } of STORES) describe(`conflicts (DESIGN §2): the first commit wins the name, the other change is kept beside it [${kind}]`, { skip }, () => {
  it('two mounts create the same name while disconnected', async () => {
    const { hub, a, b, replica } = await setup(kind);
    const fa = a.newIno();
    const fb = b.newIno();
    await a.up(0, [file(ROOT, 'a.txt', fa), { write: fa, data: text('from A') }]);
    const rb = await b.up(0, [file(ROOT, 'a.txt', fb), { write: fb, data: text('from B') }]);
    const expected = `a.conflict-${b.id}-${STAMP}.txt`;
    assert.deepEqual(rb.resolutions, [{ jseq: 1, kind: 'renamed', ino: fb, parent: ROOT, name: expected, wanted: 'a.txt' }]);
    assert.deepEqual(await listDir(hub, ROOT), new Map([['a.txt', fa], [expected, fb]]));
    assert.equal((await readFile(hub, fa)).toString(), 'from A');
    assert.equal((await readFile(hub, fb)).toString(), 'from B');

    // Directories too; the loser's later ops follow its inode into the renamed directory.
    const da = a.newIno();
    const db = b.newIno();
    const inside = b.newIno();
    await a.up(1, [dir(ROOT, 'd', da)]);
    await b.up(0, [dir(ROOT, 'd', db), file(db, 'inner', inside)]);
    const dName = `d.conflict-${b.id}-${STAMP}`;
    assert.equal((await listDir(hub, ROOT)).get(dName), db);
    assert.deepEqual(await listDir(hub, db), new Map([['inner', inside]]));
    assert.equal((await listDir(hub, da)).size, 0);

    // B still calls its file a.txt: deleting it removes B's file, not A's.
    await b.up(0, [{ t: 'unlink', parent: ROOT, name: 'a.txt', ino: fb, timeMs: 4000 }]);
    assert.equal((await listDir(hub, ROOT)).get('a.txt'), fa);
    assert.equal((await listDir(hub, ROOT)).has(expected), false);
    assert.equal(await metricValue(hub.registry, 'aether_hub_conflicts_total', { kind: 'renamed' }), 2);
    await replica();
  });

  it('a write based on a version another mount changed meanwhile becomes a conflict copy with the full content', async () => {
    const { hub, a, b, replica } = await setup(kind);
    const f = a.newIno();
    const s1 = (await a.up(0, [file(ROOT, 'f.txt', f), { write: f, data: big('0') }])).hubSeq!;
    // Both mounts saw f.txt at s1. A commits its edit first.
    await a.up(s1, [{ write: f, data: big('A') }]);
    const rb = await b.up(s1, [{ write: f, data: big('B') }]);
    const copyName = `f.conflict-${b.id}-${STAMP}.txt`;
    const copy = (await listDir(hub, ROOT)).get(copyName);
    assert.ok(copy !== undefined, `no ${copyName} in ${[...(await listDir(hub, ROOT)).keys()].join(', ')}`);
    assert.deepEqual(rb.resolutions, [{ jseq: 1, kind: 'conflict-copy', ino: f, copyIno: copy, parent: ROOT, name: copyName }]);
    assert.ok((await readFile(hub, f)).equals(big('A')), 'the first commit keeps the name');
    assert.ok((await readFile(hub, copy)).equals(big('B')), "the loser's whole content, not a diff");
    assert.equal((await inodeOf(hub, copy))?.mode, 0o640);
    const conflictSeq = rb.hubSeq!;

    // B writes again before it has seen the conflict: into its copy, not a second copy.
    const again = await b.up(s1, [{ write: f, data: text('B, second edit') }]);
    assert.deepEqual(again.resolutions, [{ jseq: 2, kind: 'diverted', ino: f, copyIno: copy }]);
    assert.equal((await readFile(hub, copy)).toString(), 'B, second edit');
    assert.equal((await listDir(hub, ROOT)).size, 2);

    // Once B has seen the conflict, its writes edit the winner's version normally.
    await b.up(conflictSeq + 1, [{ write: f, data: text('B on top of A') }]);
    assert.equal((await readFile(hub, f)).toString(), 'B on top of A');
    assert.equal((await listDir(hub, ROOT)).size, 2);

    // And A, still on an old view, now loses in turn.
    const ra = await a.up(s1 + 1, [{ write: f, data: text('A, late') }]);
    const aCopy = `f.conflict-${a.id}-${STAMP}.txt`;
    assert.equal(ra.resolutions[0]?.kind, 'conflict-copy');
    assert.equal((await readFile(hub, (await listDir(hub, ROOT)).get(aCopy)!)).toString(), 'A, late');
    assert.equal((await readFile(hub, f)).toString(), 'B on top of A');
    assert.equal(await metricValue(hub.registry, 'aether_hub_conflicts_total', { kind: 'conflict-copy' }), 2);
    await replica();
  });

  it('writes to a file deleted before its conflict copy was made go on into the copy; to one deleted after, into a copy of their own', async () => {
    const { hub, a, b, replica } = await setup(kind);
    const f = a.newIno();
    const s1 = (await a.up(0, [file(ROOT, 'f.txt', f), { write: f, data: text('v1') }])).hubSeq!;
    await a.up(s1, [{ t: 'unlink', parent: ROOT, name: 'f.txt', ino: f, timeMs: 4000 }]);
    // B, with f.txt still open, wrote to it before it saw the delete: kept as a copy.
    const first = await b.up(s1, [{ write: f, data: text('B, while open') }]);
    const copy = first.resolutions[0]?.kind === 'conflict-copy' ? first.resolutions[0].copyIno : assert.fail(JSON.stringify(first.resolutions));
    // It writes again through the open file after it saw that: the copy is where the file lives on.
    const again = await b.up(first.hubSeq!, [{ write: f, data: text('B, while open, again') }]);
    assert.deepEqual(again.resolutions, [{ jseq: 2, kind: 'diverted', ino: f, copyIno: copy }]);
    assert.equal((await readFile(hub, copy)).toString(), 'B, while open, again');

    const g = a.newIno();
    const s2 = (await a.up(again.hubSeq!, [file(ROOT, 'g.txt', g), { write: g, data: text('g1') }])).hubSeq!;
    await a.up(s2, [{ write: g, data: text('g2 by A') }]);
    const lost = await b.up(s2, [{ write: g, data: text('g by B') }]);
    const gCopy = lost.resolutions[0]?.kind === 'conflict-copy' ? lost.resolutions[0].copyIno : assert.fail(JSON.stringify(lost.resolutions));
    // A deletes g.txt after B's copy was made; B edits A's version, not having seen the delete.
    await a.up(lost.hubSeq!, [{ t: 'unlink', parent: ROOT, name: 'g.txt', ino: g, timeMs: 5000 }]);
    const late = await b.up(lost.hubSeq!, [{ write: g, data: text('g2 by A, then B') }]);
    assert.equal(late.resolutions[0]?.kind, 'conflict-copy', JSON.stringify(late.resolutions));
    assert.notEqual(late.resolutions[0]?.kind === 'conflict-copy' && late.resolutions[0].copyIno, gCopy);
    assert.equal((await readFile(hub, gCopy)).toString(), 'g by B', 'the earlier copy keeps its content');
    await replica();
  });

  /** A deletes f.txt; B, which had it open, wrote to it: the hub keeps B's write in a copy. */
  async function copied(hub: Hub, a: TestMount, b: TestMount): Promise<{ f: number; copy: number; name: string; seq: number }> {
    const f = a.newIno();
    const s1 = (await a.up(0, [file(ROOT, 'f.txt', f), { write: f, data: text('v1') }])).hubSeq!;
    await a.up(s1, [{ t: 'unlink', parent: ROOT, name: 'f.txt', ino: f, timeMs: 4000 }]);
    const first = await b.up(s1, [{ write: f, data: text('B 1') }]);
    const r = first.resolutions[0]?.kind === 'conflict-copy' ? first.resolutions[0] : assert.fail(JSON.stringify(first.resolutions));
    return { f, copy: r.copyIno, name: r.name, seq: first.hubSeq! };
  }

  /** Every file in the root, by its content. */
  async function contents(hub: Hub): Promise<string[]> {
    const out: string[] = [];
    for (const ino of (await listDir(hub, ROOT)).values()) out.push((await readFile(hub, ino)).toString());
    return out.sort();
  }

  // On the mount the copy is a file of its own, which the open file's writes never show, nor the
  // other way round: neither may overwrite the other (a review reproduced each losing a write).
  it('writes through the open file go on into its copy until the copy changes by its own name, also by this mount: then into a copy of their own', async () => {
    const { hub, a, b, replica } = await setup(kind);
    const { f, copy, seq: s1 } = await copied(hub, a, b);
    let seq = s1;
    for (const body of ['B 2', 'B 3']) {
      const r = await b.up(seq, [{ write: f, data: text(body) }]);
      assert.deepEqual(r.resolutions, [{ jseq: b.seq, kind: 'diverted', ino: f, copyIno: copy }], body);
      seq = r.hubSeq!;
    }
    seq = (await b.up(seq, [{ write: copy, data: text('B rewrote the copy') }])).hubSeq!;
    const after = await b.up(seq, [{ write: f, data: text('B 4') }]);
    const copy2 = after.resolutions[0]?.kind === 'conflict-copy' ? after.resolutions[0].copyIno : assert.fail(JSON.stringify(after.resolutions));
    assert.notEqual(copy2, copy);
    const next = await b.up(after.hubSeq!, [{ write: f, data: text('B 5') }]);
    assert.deepEqual(next.resolutions, [{ jseq: b.seq, kind: 'diverted', ino: f, copyIno: copy2 }]);
    assert.deepEqual(await contents(hub), ['B 5', 'B rewrote the copy']);
    await replica();
  });

  it('the open file and its copy both written in one batch, then the open file again: both writes kept', async () => {
    const { hub, a, b, replica } = await setup(kind);
    const { f, copy, seq } = await copied(hub, a, b);
    const r = await b.up(seq, [{ write: f, data: text('B 2') }, { write: copy, data: text('B rewrote the copy') }]);
    await b.up(r.hubSeq!, [{ write: f, data: text('B 3') }]);
    assert.deepEqual(await contents(hub), ['B 3', 'B rewrote the copy']);
    await replica();
  });

  it('a diverted write, then a write to the copy by its name made before that one reached the mount: both kept', async () => {
    const { hub, a, b, replica } = await setup(kind);
    const { f, copy, seq } = await copied(hub, a, b);
    await b.up(seq, [{ write: f, data: text('B 2 via the descriptor') }]);
    const byName = await b.up(seq, [{ write: copy, data: text('B rewrote the copy') }]);
    assert.equal(byName.resolutions[0]?.kind, 'conflict-copy', JSON.stringify(byName.resolutions));
    assert.deepEqual(await contents(hub), ['B 2 via the descriptor', 'B rewrote the copy']);
    await replica();
  });

  for (const how of ['unlinks', 'replaces (an editor\'s save)'] as const) {
    it(`this mount ${how} the copy by its name, then writes through the open file: the write goes to a new copy`, async () => {
      const { hub, a, b, replica } = await setup(kind);
      const { f, copy, name, seq } = await copied(hub, a, b);
      const t = b.newIno();
      const removal: WireOp[] =
        how === 'unlinks'
          ? [{ t: 'unlink', parent: ROOT, name, ino: copy, timeMs: 5000 }]
          : [file(ROOT, 'tmp', t), { t: 'rename', parent: ROOT, name: 'tmp', newParent: ROOT, newName: name, ino: t, dstIno: copy, flags: 0, timeMs: 5000 }];
      const removed = await b.up(seq, removal);
      const late = await b.up(removed.hubSeq!, [{ write: f, data: text('B 2 via the descriptor') }]);
      assert.equal(late.resolutions[0]?.kind, 'conflict-copy', JSON.stringify(late.resolutions));
      assert.deepEqual(await contents(hub), how === 'unlinks' ? ['B 2 via the descriptor'] : ['', 'B 2 via the descriptor']);
      await replica();
    });
  }

  it('a batch sent again after its ack was lost gets its resolutions again, with those of entries added to it; once the mount went past them, no more', async () => {
    const { a, b, replica } = await setup(kind);
    const f = a.newIno();
    const s1 = (await a.up(0, [file(ROOT, 'f.txt', f), { write: f, data: text('v1') }])).hubSeq!;
    await a.up(s1, [{ write: f, data: text('A edit') }]);
    const edit = content(1, f, text('B edit'), 3000);
    const batch1 = { upToSeq: 1, baseSeq: s1, entries: [edit.entry], chunks: edit.chunks };
    const first = await b.c.upload(batch1);
    assert.deepEqual(first.resolutions.map((r) => [r.jseq, r.kind]), [[1, 'conflict-copy']]);
    const again = await b.c.upload(batch1);
    assert.equal(again.duplicate, true);
    assert.deepEqual(again.resolutions, first.resolutions);
    const g = b.newIno();
    const batch2 = { upToSeq: 2, baseSeq: s1, entries: [edit.entry, { seq: 2, op: file(ROOT, 'f.txt', g) }], chunks: edit.chunks };
    const more = await b.c.upload(batch2);
    assert.deepEqual(more.resolutions.map((r) => [r.jseq, r.kind]), [[1, 'conflict-copy'], [2, 'renamed']]);
    const batch3 = { upToSeq: 3, baseSeq: more.hubSeq!, entries: [{ seq: 3, op: dir(ROOT, 'd', b.newIno()) }], chunks: new Map<string, Buffer>() };
    assert.deepEqual((await b.c.upload(batch3)).resolutions, []);
    assert.deepEqual((await b.c.upload(batch3)).resolutions, [], 'the mount had the earlier ones: it sent from entry 3 on');
    // Sent again with its entry coalesced into a later one (the same file written again): the
    // batch says where it starts, so the earlier entry's resolution comes too.
    const f2 = a.newIno();
    const s2 = (await a.up(more.hubSeq!, [file(ROOT, 'f2.txt', f2), { write: f2, data: text('v1') }])).hubSeq!;
    await a.up(s2, [{ write: f2, data: text('A edit') }]);
    const edit4 = content(4, f2, text('B edit'), 3000);
    const lost = await b.c.upload({ upToSeq: 4, baseSeq: s2, fromSeq: 4, entries: [edit4.entry], chunks: edit4.chunks });
    assert.deepEqual(lost.resolutions.map((r) => [r.jseq, r.kind]), [[4, 'conflict-copy']]);
    const edit5 = content(5, f2, text('B edit, then more'), 3000);
    const coalesced = await b.c.upload({ upToSeq: 5, baseSeq: s2, fromSeq: 4, entries: [edit5.entry], chunks: edit5.chunks });
    assert.deepEqual(coalesced.resolutions.map((r) => [r.jseq, r.kind]), [[4, 'conflict-copy'], [5, 'diverted']]);
    await replica();
  });

  it('a write to a file another mount deleted, made after the delete reached the writer (its view missed it, or the file was open), is kept as a copy', async () => {
    const { hub, a, b, replica } = await setup(kind);
    const f = a.newIno();
    const s1 = (await a.up(0, [file(ROOT, 'f.txt', f), { write: f, data: text('v1') }])).hubSeq!;
    const s2 = (await a.up(s1, [{ t: 'unlink', parent: ROOT, name: 'f.txt', ino: f, timeMs: 4000 }])).hubSeq!;
    const late = await b.up(s2, [{ write: f, data: text('B wrote after the delete') }]);
    const copy = late.resolutions[0]?.kind === 'conflict-copy' ? late.resolutions[0].copyIno : assert.fail(JSON.stringify(late.resolutions));
    assert.equal((await readFile(hub, copy)).toString(), 'B wrote after the delete');
    // Its own delete, then a write (through a descriptor still open): the unlinked file's data goes, as on a local disk.
    const g = b.newIno();
    const s3 = (await b.up(late.hubSeq!, [file(ROOT, 'g.txt', g), { write: g, data: text('g') }])).hubSeq!;
    const s4 = (await b.up(s3, [{ t: 'unlink', parent: ROOT, name: 'g.txt', ino: g, timeMs: 6000 }])).hubSeq!;
    const own = await b.up(s4, [{ write: g, data: text('after my own unlink') }]);
    assert.deepEqual(own.resolutions.map((r) => r.kind), ['skipped']);
    await replica();
  });

  it('a removal after which the mount still names the file (viewKept): not applied to another name of it; where it deletes the file, a later write is kept as a copy; a removal without it, as on a disk', async () => {
    const { hub, a, b, replica } = await setup(kind);
    const f = a.newIno();
    const g = a.newIno();
    const k = a.newIno();
    const s1 = (await a.up(0, [file(ROOT, 'f.txt', f), { write: f, data: text('v1') }, file(ROOT, 'g.txt', g), { write: g, data: text('g1') }, file(ROOT, 'k.txt', k), { write: k, data: text('k1') }])).hubSeq!;
    const s2 = (await a.up(s1, [{ t: 'rename', parent: ROOT, name: 'f.txt', ino: f, newParent: ROOT, newName: 'h.txt', dstIno: 0, flags: 0, timeMs: 4000 }])).hubSeq!;
    const kept = async (op: WireOp, base: number, names: [number, string][]) => {
      b.seq++;
      return b.c.upload({ upToSeq: b.seq, baseSeq: base, entries: [{ seq: b.seq, op, viewKept: names }], chunks: new Map() });
    };
    // B removed the name f.txt and still names the file h.txt (its view has A's rename): A's rename took f.txt away, so nothing is removed.
    const del = await kept({ t: 'unlink', parent: ROOT, name: 'f.txt', ino: f, timeMs: 5000 }, s1, [[ROOT, 'h.txt']]);
    assert.deepEqual(del.resolutions, [{ jseq: b.seq, kind: 'skipped', reason: 'name-gone' }]);
    const w = await b.up(del.hubSeq ?? s2, [{ write: f, data: text('B wrote it after') }]);
    assert.deepEqual(w.resolutions, []);
    assert.equal((await readFile(hub, f)).toString(), 'B wrote it after');
    // Where the name holds the file and it was the hub's last: the file goes, and B's later write (its view still shows the file) is kept as a copy.
    const gone = await kept({ t: 'unlink', parent: ROOT, name: 'k.txt', ino: k, timeMs: 6000 }, s2, [[ROOT, 'k2.txt']]);
    assert.deepEqual(gone.resolutions, []);
    const late = await b.up(gone.hubSeq!, [{ write: k, data: text('B wrote k') }]);
    const copyName = `k.conflict-${b.id}-${STAMP}.txt`;
    assert.deepEqual(late.resolutions.map((r) => [r.kind, 'name' in r ? r.name : '']), [['conflict-copy', copyName]]);
    assert.equal((await readFile(hub, (await listDir(hub, ROOT)).get(copyName)!)).toString(), 'B wrote k');
    // Without the flag, a removal the hub applied under another name of the file (A renamed g.txt): a write through a
    // descriptor still open on it goes with the file, as on a local disk.
    const s3 = (await a.up(late.hubSeq!, [{ t: 'rename', parent: ROOT, name: 'g.txt', ino: g, newParent: ROOT, newName: 'm.txt', dstIno: 0, flags: 0, timeMs: 7000 }])).hubSeq!;
    const own = await b.up(s2, [{ t: 'unlink', parent: ROOT, name: 'g.txt', ino: g, timeMs: 8000 }]);
    assert.deepEqual(own.resolutions.map((r) => r.kind), ['moved']);
    const after = await b.up(Math.max(s3, own.hubSeq!), [{ write: g, data: text('scratch') }]);
    assert.deepEqual(after.resolutions.map((r) => [r.kind, 'reason' in r ? r.reason : '']), [['skipped', 'gone']]);
    assert.deepEqual([...(await listDir(hub, ROOT)).keys()].sort(), ['h.txt', copyName]);
    // Both names of a hard-linked file removed by B (rm -r) while A renamed one: the first removal goes to the name
    // A made (not one B still held), the second to the other: the file is gone, as B meant.
    const x = a.newIno();
    const s4 = (await a.up(after.hubSeq ?? s3, [file(ROOT, 'x1', x), { write: x, data: text('x') }, { t: 'link', parent: ROOT, name: 'x2', ino: x, timeMs: 9000 }])).hubSeq!;
    await a.up(s4, [{ t: 'rename', parent: ROOT, name: 'x1', ino: x, newParent: ROOT, newName: 'x3', dstIno: 0, flags: 0, timeMs: 9100 }]);
    const first = await kept({ t: 'unlink', parent: ROOT, name: 'x1', ino: x, timeMs: 9200 }, s4, [[ROOT, 'x2']]);
    assert.deepEqual(first.resolutions.map((r) => [r.kind, 'name' in r ? r.name : '']), [['moved', 'x3']]);
    const second = await b.up(s4, [{ t: 'unlink', parent: ROOT, name: 'x2', ino: x, timeMs: 9300 }]);
    assert.deepEqual(second.resolutions, []);
    assert.deepEqual([...(await listDir(hub, ROOT)).keys()].sort(), ['h.txt', copyName]);
    await replica();
  });

  it('deletes, renames over a changed target, writes to deleted files, creates in removed directories: nothing is lost', async () => {
    const { hub, a, b, replica } = await setup(kind);
    const f = a.newIno();
    const d = a.newIno();
    const s1 = (await a.up(0, [file(ROOT, 'doc.md', f), { write: f, data: text('v1') }, dir(ROOT, 'tmp', d)])).hubSeq!;

    // B deletes doc.md while A's edit (which B has not seen) is committed: the edit wins, the file stays.
    await a.up(s1, [{ write: f, data: text('v2 by A') }]);
    const del = await b.up(s1, [{ t: 'unlink', parent: ROOT, name: 'doc.md', ino: f, timeMs: 5000 }]);
    assert.deepEqual(del.resolutions, [{ jseq: 1, kind: 'skipped', reason: 'changed' }]);
    assert.equal((await readFile(hub, f)).toString(), 'v2 by A');

    // An editor's atomic save on B (write a temp file, rename it over doc.md) based on v1.
    const tmpFile = b.newIno();
    const save = await b.up(s1, [file(ROOT, '.doc.md.swp', tmpFile), { write: tmpFile, data: text('v2 by B') }, { t: 'rename', parent: ROOT, name: '.doc.md.swp', ino: tmpFile, newParent: ROOT, newName: 'doc.md', dstIno: f, flags: 0, timeMs: 5000 }]);
    const saved = `doc.conflict-${b.id}-${STAMP}.md`;
    assert.deepEqual(save.resolutions, [{ jseq: 4, kind: 'renamed', ino: tmpFile, parent: ROOT, name: saved, wanted: 'doc.md' }]);
    assert.equal((await readFile(hub, f)).toString(), 'v2 by A');
    assert.equal((await readFile(hub, (await listDir(hub, ROOT)).get(saved)!)).toString(), 'v2 by B');

    // A deletes notes.txt in tmp/; B, which had not seen that, writes to it: kept as a conflict copy where it was.
    const notes = b.newIno();
    const s2 = (await b.up(s1, [file(d, 'notes.txt', notes), { write: notes, data: text('n1') }])).hubSeq!;
    await a.up(s2, [{ t: 'unlink', parent: d, name: 'notes.txt', ino: notes, timeMs: 6000 }]);
    const late = await b.up(s2, [{ write: notes, data: text('n2, written after A deleted it') }]);
    const kept = `notes.conflict-${b.id}-${STAMP}.txt`;
    assert.equal(late.resolutions[0]?.kind, 'conflict-copy');
    assert.equal((await readFile(hub, (await listDir(hub, d)).get(kept)!)).toString(), 'n2, written after A deleted it');

    // A removes an empty directory; B, offline, creates a file in it: the file lands in the root.
    const empty = a.newIno();
    const s3 = (await a.up(s2, [dir(ROOT, 'gone', empty)])).hubSeq!;
    await a.up(s3, [{ t: 'rmdir', parent: ROOT, name: 'gone', ino: empty, timeMs: 7000 }]);
    const orphan = b.newIno();
    const r = await b.up(s3, [file(empty, 'new.txt', orphan), { write: orphan, data: text('made offline') }]);
    const landed = `new.conflict-${b.id}-${STAMP}.txt`;
    assert.deepEqual(r.resolutions, [{ jseq: r.resolutions[0]!.jseq, kind: 'renamed', ino: orphan, parent: ROOT, name: landed, wanted: 'new.txt' }]);
    assert.equal((await readFile(hub, orphan)).toString(), 'made offline');

    // A rmdir that finds the directory no longer empty leaves it (and its new content) alone.
    const shared = a.newIno();
    const s4 = (await a.up(s3, [dir(ROOT, 'shared', shared)])).hubSeq!;
    const child = b.newIno();
    await b.up(s4, [file(shared, 'child', child)]);
    const rm = await a.up(s4, [{ t: 'rmdir', parent: ROOT, name: 'shared', ino: shared, timeMs: 8000 }]);
    assert.deepEqual(rm.resolutions, [{ jseq: rm.resolutions[0]!.jseq, kind: 'skipped', reason: 'ENOTEMPTY' }]);
    assert.equal((await listDir(hub, shared)).get('child'), child);
    await replica();
  });
});
