import assert from 'node:assert/strict';
import crypto, { randomUUID } from 'node:crypto';
import { after, describe, it, mock } from 'node:test';
import { Hub } from '../../src/hub/hub.js';
import { CLOSE_AUTH_FAILED, CLOSE_PROTOCOL, PROTOCOL_VERSION, type ErrorFrame } from '../../src/protocol/frames.js';
import { connectClient, content, listDir, metricValue, mkfile, newStore, RawClient, readFile, ROOT, startHub, STORES, TOKEN } from './helpers.js';

for (const { kind, skip } of STORES) describe(`hub authentication [${kind}]`, { skip }, async () => {
  const { hub, logs } = await startHub({ helloTimeoutMs: 300 }, kind);
  // A healthy mount stays connected through every rejection below and keeps committing.
  const good = await connectClient(hub.url);
  let seq = 0;
  const goodUpload = async (name: string) => {
    const ino = good.welcome!.inoBase + ++seq;
    const c = content(++seq, ino, Buffer.from(`content of ${name}`));
    await good.upload({ upToSeq: seq, baseSeq: 0, entries: [mkfile(seq - 1, ROOT, name, ino), c.entry], chunks: c.chunks });
    assert.equal((await readFile(hub, ino)).toString(), `content of ${name}`);
  };
  after(async () => {
    await good.close();
    await hub.close();
  });

  it('a good token gets a welcome with a mount number that is kept per mount id', async () => {
    const id = randomUUID();
    const a = await RawClient.hello(hub.url, id);
    assert.equal(a.welcome.v, PROTOCOL_VERSION);
    assert.ok(a.welcome.mountNo >= 2, 'the healthy client registered first');
    assert.equal(a.welcome.inoBase, a.welcome.mountNo * 2 ** 32);
    a.c.close();
    const again = await RawClient.hello(hub.url, id);
    assert.equal(again.welcome.mountNo, a.welcome.mountNo);
    const other = await RawClient.hello(hub.url, randomUUID());
    assert.equal(other.welcome.mountNo, a.welcome.mountNo + 1);
    again.c.close();
    other.c.close();
    await goodUpload('after-good-token');
  });

  it('a bad or missing token is refused with an error frame, close code 4401, one log line and a count', async () => {
    const before = await metricValue(hub.registry, 'aether_hub_rejected_total', { reason: 'AUTH_FAILED' });
    const logsBefore = logs.length;
    for (const token of ['wrong', undefined, '', TOKEN + 'x', TOKEN.slice(0, -1)]) {
      const c = await RawClient.open(hub.url);
      c.send({ t: 'hello', v: PROTOCOL_VERSION, mountId: randomUUID(), ...(token === undefined ? {} : { token }) });
      const e = (await c.next((f) => f.t === 'error')) as ErrorFrame;
      assert.equal(e.code, 'AUTH_FAILED');
      assert.equal(e.fatal, true);
      assert.match(e.message, token === undefined || token === '' ? /no token/ : /bad token/);
      await c.closed;
      assert.equal(c.closeCode, CLOSE_AUTH_FAILED);
    }
    assert.equal(await metricValue(hub.registry, 'aether_hub_rejected_total', { reason: 'AUTH_FAILED' }), before + 5);
    const lines = logs.slice(logsBefore).filter((l) => l.includes('AUTH_FAILED'));
    assert.equal(lines.length, 5);
    for (const l of lines) assert.ok(!l.includes('\n') && !l.includes(TOKEN), l);
    await goodUpload('after-bad-tokens');
  });

  it('compares tokens in constant time: timingSafeEqual on two 32-byte digests, whatever the lengths', async () => {
    const spy = mock.method(crypto, 'timingSafeEqual');
    try {
      for (const token of [TOKEN, 'short', 'x'.repeat(1000)]) {
        const c = await RawClient.open(hub.url);
        c.send({ t: 'hello', v: PROTOCOL_VERSION, token, mountId: randomUUID() });
        await c.next((f) => f.t === 'welcome' || f.t === 'error');
        c.close();
      }
      // The other store's suite runs in this process too: count the calls for these tokens only.
      const presented = spy.mock.calls.map((call) => (call.arguments[0] as Buffer).toString('hex'));
      const digestOf = (t: string) => crypto.createHash('sha256').update(t).digest('hex');
      for (const token of ['short', 'x'.repeat(1000)]) assert.equal(presented.filter((d) => d === digestOf(token)).length, 1, `one comparison for a ${token.length}-character token`);
      assert.ok(presented.includes(digestOf(TOKEN)));
      for (const call of spy.mock.calls) {
        const [x, y] = call.arguments as [Buffer, Buffer];
        assert.equal(x.length, 32);
        assert.equal(y.length, 32);
      }
    } finally {
      spy.mock.restore();
    }
  });

  it('anything before hello is refused and the connection closed; so is a silent client', async () => {
    const c1 = await RawClient.open(hub.url);
    c1.send({ t: 'follow', cursor: 0 });
    assert.equal(((await c1.next((f) => f.t === 'error')) as ErrorFrame).code, 'AUTH_REQUIRED');
    await c1.closed;
    assert.equal(c1.closeCode, CLOSE_PROTOCOL);
    const c2 = await RawClient.open(hub.url);
    c2.sendBinary(Buffer.alloc(40, 1));
    assert.equal(((await c2.next((f) => f.t === 'error')) as ErrorFrame).code, 'AUTH_REQUIRED');
    await c2.closed;
    const c3 = await RawClient.open(hub.url);
    const e = (await c3.next((f) => f.t === 'error', 3000)) as ErrorFrame;
    assert.equal(e.code, 'AUTH_REQUIRED');
    assert.match(e.message, /no hello within 300 ms/);
    await c3.closed;
    const c4 = await RawClient.open(hub.url);
    c4.send({ t: 'hello', v: 99, token: TOKEN, mountId: randomUUID() });
    const refused = (await c4.next((f) => f.t === 'error')) as ErrorFrame;
    assert.equal(refused.code, 'UNSUPPORTED_VERSION');
    assert.equal(refused.message, 'protocol version 99; this hub speaks 1 and 2');
    await c4.closed;
    // Version 1 (no feed window) is still served.
    const c5 = await RawClient.open(hub.url);
    c5.send({ t: 'hello', v: 1, token: TOKEN, mountId: randomUUID() });
    assert.equal((await c5.next((f) => f.t === 'welcome')).t, 'welcome');
    c5.close();
    assert.equal(good.state, 'online');
    await goodUpload('after-no-hello');
  });

  it('mount numbers survive a hub restart', async () => {
    const store = await newStore(kind);
    const ids = [randomUUID(), randomUUID()];
    let h = await Hub.start({ ...store.opts, token: TOKEN, listen: '127.0.0.1:0', metricsListen: 'off', log: () => undefined });
    const nos: number[] = [];
    for (const id of ids) {
      const { c, welcome } = await RawClient.hello(h.url, id);
      nos.push(welcome.mountNo);
      c.close();
    }
    await h.close();
    h = await Hub.start({ ...store.opts, token: TOKEN, listen: '127.0.0.1:0', metricsListen: 'off', log: () => undefined });
    for (const [i, id] of [...ids].reverse().entries()) {
      const { c, welcome } = await RawClient.hello(h.url, id);
      assert.equal(welcome.mountNo, [...nos].reverse()[i]);
      c.close();
    }
    assert.deepEqual(nos, [1, 2]);
    assert.equal((await listDir(h, ROOT)).size, 0);
    await h.close();
    await store.drop();
  });
});
