import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { sendControl } from '../../src/control/client.js';
import { ControlServer } from '../../src/control/server.js';
import { isAetherError } from '../../src/errors.js';

const sockPath = () => join(mkdtempSync(join(tmpdir(), 'aether-ctl-')), 'control.sock');

function rawRequest(path: string, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = createConnection(path, () => s.write(text));
    let buf = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      buf += d;
      if (buf.includes('\n')) {
        s.end();
        resolve(buf.trim());
      }
    });
    s.on('error', reject);
  });
}

describe('control client against something that is not a mount', () => {
  it('a mount that stops (its socket reset) after taking the request: says the mount stopped before it answered', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'aether-ctl-gone-'));
    const path = join(dir, 'control.sock');
    // Closed with the request unread, as by a mount killed meanwhile: the client's read is reset.
    const server = createServer({ pauseOnConnect: true }, (sock) => setTimeout(() => sock.destroy(), 50));
    await new Promise<void>((r) => server.listen(path, r));
    try {
      await assert.rejects(sendControl(path, 'SYNC WAIT', {}, 5000), (err) => isAetherError(err, 'CONTROL_UNAVAILABLE') && /the mount stopped before it answered SYNC WAIT \(ECONNRESET\)/.test(err.message));
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  for (const [what, answer] of [
    ['an HTTP server', 'HTTP/1.1 400 Bad Request\r\n\r\n'],
    ['a server that replies JSON of another shape', '[1,2]\n'],
    ['a server that closes without replying', ''],
  ] as const) {
    it(`${what}: one clear error, at once`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'aether-ctl-foreign-'));
      const path = join(dir, 'control.sock');
      const server = createServer((sock) => {
        sock.once('data', () => sock.end(answer));
      });
      await new Promise<void>((r) => server.listen(path, r));
      try {
        const started = Date.now();
        await assert.rejects(sendControl(path, 'STATUS', {}, 5000), (err) => isAetherError(err, 'CONTROL_UNAVAILABLE') && /does not answer as an Aether control socket/.test(err.message));
        assert.ok(Date.now() - started < 2000, 'not after the timeout');
      } finally {
        await new Promise((r) => server.close(r));
      }
    });
  }
});

describe('control socket', () => {
  it('is created with mode 0600 and answers commands with JSON', async () => {
    const path = sockPath();
    const server = new ControlServer(path, { STATUS: () => ({ state: 'online' }), 'CACHE CLEAR': async (args) => ({ freed: 5, args }) });
    await server.listen();
    try {
      assert.equal(statSync(path).mode & 0o777, 0o600);
      assert.deepEqual(await sendControl(path, 'STATUS'), { state: 'online' });
      assert.deepEqual(await sendControl(path, 'CACHE CLEAR', { x: 1 }), { freed: 5, args: { x: 1 } });
    } finally {
      await server.close();
    }
  });
  it('removed while the mount runs (a cleanup of the state directory), it is made again within seconds, 0600', async () => {
    const path = sockPath();
    const server = new ControlServer(path, { STATUS: () => ({ state: 'online' }) });
    await server.listen();
    try {
      rmSync(path);
      await assert.rejects(sendControl(path, 'STATUS', {}, 1000), (err) => isAetherError(err, 'CONTROL_UNAVAILABLE'));
      for (let i = 0; i < 100 && !existsSync(path); i++) await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(await sendControl(path, 'STATUS'), { state: 'online' });
      assert.equal(statSync(path).mode & 0o777, 0o600);
    } finally {
      await server.close();
    }
    assert.equal(existsSync(path), false, 'removed at close');
  });
  it('rejects malformed requests, unknown and unavailable commands without dying', async () => {
    const path = sockPath();
    const server = new ControlServer(path, {
      STATUS: () => {
        throw new Error('broken handler');
      },
    });
    await server.listen();
    try {
      assert.deepEqual(JSON.parse(await rawRequest(path, 'not json\n')), { ok: false, error: 'request is not valid JSON' });
      assert.deepEqual(JSON.parse(await rawRequest(path, '{"cmd":"DROP TABLES"}\n')), { ok: false, error: 'unknown command "DROP TABLES"' });
      assert.deepEqual(JSON.parse(await rawRequest(path, 'null\n')), { ok: false, error: 'unknown command undefined' });
      assert.deepEqual(JSON.parse(await rawRequest(path, '{"cmd":"SYNC PAUSE"}\n')), { ok: false, error: 'SYNC PAUSE is not available on this mount' });
      assert.match(JSON.parse(await rawRequest(path, 'x'.repeat(70_000))).error, /request longer than/);
      await assert.rejects(sendControl(path, 'STATUS'), (e: unknown) => isAetherError(e, 'CONTROL_BAD_REQUEST') && /broken handler/.test(e.message));
    } finally {
      await server.close();
    }
  });
  it('a mount still starting (no handlers yet) says so instead of calling its commands unavailable', async () => {
    const path = sockPath();
    const handlers = {};
    const server = new ControlServer(path, handlers);
    await server.listen();
    try {
      await assert.rejects(sendControl(path, 'STATUS'), (e: unknown) => isAetherError(e) && /the mount is still starting \(replaying its journal or waiting for its hub\); try again shortly/.test(e.message));
      Object.assign(handlers, { STATUS: () => ({ state: 'online' }) });
      assert.deepEqual(await sendControl(path, 'STATUS'), { state: 'online' });
    } finally {
      await server.close();
    }
  });
  it('a leftover socket file is replaced; a live one is refused', async () => {
    const path = sockPath();
    writeFileSync(path, '');
    const a = new ControlServer(path, { STATUS: () => 1 });
    await a.listen();
    try {
      const refused = new ControlServer(path, {});
      await assert.rejects(refused.listen(), /already using the control socket/);
      // A failed start closes what it opened: that must not take the live mount's socket away.
      await refused.close();
      assert.equal(await sendControl(path, 'STATUS'), 1);
    } finally {
      await a.close();
    }
  });
  it('a missing socket is a clear CONTROL_UNAVAILABLE error', async () => {
    await assert.rejects(sendControl(sockPath(), 'STATUS'), (e: unknown) => isAetherError(e, 'CONTROL_UNAVAILABLE') && /no mount is running there/.test(e.message));
  });
});
