import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { encodeChunkFrame, sha256Hex, type AckFrame, type ErrorFrame, type MissingFrame } from '../../src/protocol/frames.js';
import { connectClient, content, listDir, metricValue, mkfile, RawClient, readFeedUntil, readFile, ROOT, startHub, STORES } from './helpers.js';

const errorOf = (c: RawClient) => c.next((f) => f.t === 'error') as Promise<ErrorFrame>;

for (const { kind, skip } of STORES) describe(`the hub rejects bad input and keeps serving [${kind}]`, { skip }, async () => {
  const { hub, logs } = await startHub({ maxFrameBytes: 128 * 1024, maxErrorsPerConnection: 40 }, kind);
  const good = await connectClient(hub.url, { followFrom: 0 });
  const goodFeed = good.feed();
  let seq = 0;
  const goodFiles = new Map<string, number>();
  /** The healthy mount commits a file and sees it on its changefeed. */
  const goodUpload = async (name: string) => {
    const ino = good.welcome!.inoBase + 1 + goodFiles.size;
    const c = content(seq + 2, ino, Buffer.from(`content of ${name}`));
    const r = await good.upload({ upToSeq: seq + 2, baseSeq: 0, entries: [mkfile(seq + 1, ROOT, name, ino), c.entry], chunks: c.chunks });
    seq += 2;
    goodFiles.set(name, ino);
    await readFeedUntil(goodFeed, (e) => e.kind === 'entry' && e.entry.hubSeq === r.hubSeq);
  };
  /** Nothing but the healthy mount's files ever reached the tree. */
  const untouched = async () => assert.deepEqual([...(await listDir(hub, ROOT))].sort(), [...goodFiles].sort());
  after(async () => {
    await good.close();
    await hub.close();
  });

  const bad = await RawClient.hello(hub.url);
  const inoBase = bad.welcome.inoBase;

  it('malformed JSON and unknown frame types get error frames; the connection stays usable', async () => {
    bad.c.send('{"t":"have",');
    assert.equal((await errorOf(bad.c)).code, 'MALFORMED');
    bad.c.send('[1,2,3]');
    assert.equal((await errorOf(bad.c)).code, 'MALFORMED');
    bad.c.send({ t: 'have', id: 7, hashes: ['zz'] });
    const e = await errorOf(bad.c);
    assert.equal(e.code, 'MALFORMED');
    assert.equal(e.id, 7);
    bad.c.send({ t: 'self-destruct', id: 8 });
    const u = await errorOf(bad.c);
    assert.equal(u.code, 'UNKNOWN_TYPE');
    assert.equal(u.fatal, false);
    bad.c.send({ t: 'have', id: 9, hashes: [] });
    assert.deepEqual(await bad.c.next((f) => f.t === 'missing'), { t: 'missing', id: 9, hashes: [] });
    await goodUpload('one');
    await untouched();
  });

  it('unsafe names reject the whole batch: nothing of it is applied', async () => {
    const cases: [string, unknown][] = [
      ['..', { t: 'mknode', parent: ROOT, name: '..', ino: inoBase + 50, kind: 'file', mode: 0o644, uid: 0, gid: 0, timeMs: 1 }],
      ['slash', { t: 'mknode', parent: ROOT, name: 'a/b', ino: inoBase + 50, kind: 'dir', mode: 0o755, uid: 0, gid: 0, timeMs: 1 }],
      ['nul', { t: 'link', parent: ROOT, name: 'a\0b', ino: inoBase + 1, timeMs: 1 }],
      ['empty', { t: 'rename', parent: ROOT, name: 'ok', ino: inoBase + 1, newParent: ROOT, newName: '', dstIno: 0, flags: 0, timeMs: 1 }],
      ['dot', { t: 'unlink', parent: ROOT, name: '.', ino: inoBase + 1, timeMs: 1 }],
    ];
    const before = await metricValue(hub.registry, 'aether_hub_rejected_total', { reason: 'UNSAFE_NAME' });
    for (const [i, [label, op]] of cases.entries()) {
      // A valid op first: the batch is checked whole before anything is applied.
      bad.c.send({ t: 'batch', id: 100 + i, baseSeq: 0, upToSeq: 2, entries: [mkfile(1, ROOT, `fine-${label}`, inoBase + 10 + i), { seq: 2, op }] });
      const e = await errorOf(bad.c);
      assert.equal(e.code, 'UNSAFE_NAME', label);
      assert.equal(e.id, 100 + i);
    }
    assert.equal(await metricValue(hub.registry, 'aether_hub_rejected_total', { reason: 'UNSAFE_NAME' }), before + cases.length);
    assert.equal(logs.filter((l) => l.includes('rejected UNSAFE_NAME')).length, cases.length);
    await untouched();
    await goodUpload('two');
  });

  it('bad ops, bad chunks and missing chunks are refused with their own codes', async () => {
    bad.c.send({ t: 'batch', id: 200, baseSeq: 0, upToSeq: 1, entries: [mkfile(1, ROOT, 'theirs', good.welcome!.inoBase + 99)] });
    const range = await errorOf(bad.c);
    assert.equal(range.code, 'BAD_OP');
    assert.match(range.message, /outside this mount's range/);
    bad.c.send({ t: 'batch', id: 201, baseSeq: 0, upToSeq: 1, entries: [{ seq: 1, op: { t: 'write', ino: inoBase + 1, offset: 0, data: 'abc', timeMs: 1 } }] });
    assert.equal((await errorOf(bad.c)).code, 'BAD_OP');
    const data = Buffer.from('some bytes');
    const frame = encodeChunkFrame(sha256Hex(Buffer.from('other bytes')), data);
    bad.c.sendBinary(frame);
    assert.equal((await errorOf(bad.c)).code, 'BAD_CHUNK');
    const c = content(2, inoBase + 1, Buffer.from('never uploaded'));
    bad.c.send({ t: 'batch', id: 202, baseSeq: 0, upToSeq: 2, entries: [mkfile(1, ROOT, 'no-chunks', inoBase + 1), c.entry] });
    const m = await errorOf(bad.c);
    assert.equal(m.code, 'MISSING_CHUNKS');
    assert.deepEqual(m.hashes, [...c.chunks.keys()]);
    await untouched();
    // The same connection can still commit properly.
    bad.c.send({ t: 'have', id: 203, hashes: [...c.chunks.keys()] });
    assert.deepEqual(((await bad.c.next((f) => f.t === 'missing')) as MissingFrame).hashes, [...c.chunks.keys()]);
    for (const [h, d] of c.chunks) bad.c.sendBinary(encodeChunkFrame(h, d));
    bad.c.send({ t: 'batch', id: 204, baseSeq: 0, upToSeq: 2, entries: [mkfile(1, ROOT, 'no-chunks', inoBase + 1), c.entry] });
    const ack = (await bad.c.next((f) => f.t === 'ack')) as AckFrame;
    assert.equal(ack.journalSeq, 2);
    assert.equal((await readFile(hub, inoBase + 1)).toString(), 'never uploaded');
    goodFiles.set('no-chunks', inoBase + 1);
    await goodUpload('three');
  });

  it('an oversized frame closes that connection with 1009, is counted and logged; others go on', async () => {
    const before = await metricValue(hub.registry, 'aether_hub_rejected_total', { reason: 'FRAME_TOO_LARGE' });
    const big = await RawClient.hello(hub.url);
    big.c.send({ t: 'have', id: 1, hashes: [], pad: 'x'.repeat(200 * 1024) });
    await big.c.closed;
    assert.equal(big.c.closeCode, 1009);
    assert.equal(await metricValue(hub.registry, 'aether_hub_rejected_total', { reason: 'FRAME_TOO_LARGE' }), before + 1);
    assert.ok(logs.some((l) => /rejected FRAME_TOO_LARGE .*Max payload size exceeded/.test(l)));
    await goodUpload('four');
    await untouched();
  });

  it('a connection that keeps sending garbage is closed after the error limit', async () => {
    const noisy = await RawClient.hello(hub.url);
    for (let i = 0; i < 40; i++) noisy.c.send('garbage');
    const last = (await noisy.c.next((f) => f.t === 'error' && f.code === 'TOO_MANY_ERRORS')) as ErrorFrame;
    assert.equal(last.fatal, true);
    await noisy.c.closed;
    await goodUpload('five');
    await untouched();
    assert.equal(good.state, 'online');
    assert.ok(logs.every((l) => !l.includes('\n')));
  });
});
