import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { bin, scrape, spawnHub, tempDir, TOKEN } from './helpers.js';

function aether(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [bin, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, encoding: 'utf8', timeout: 15_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('aether hub (command line)', () => {
  it('bad input is one clear line and exit code 2', () => {
    const cases: [string[], RegExp][] = [
      [['hub', '--data', tempDir()], /needs a token/],
      [['hub', '--token', 'x', '--tls-cert', '/nonexistent'], /--tls-cert and --tls-key go together/],
      [['hub', '--token', 'x', '--tls-cert', '/nonexistent/c.pem', '--tls-key', '/nonexistent/k.pem'], /--tls-cert \/nonexistent\/c.pem: ENOENT/],
      [['hub', '--token', 'x', '--listen', 'nowhere'], /--listen="nowhere": must be HOST:PORT/],
      [['hub', '--token', 'x', '--feed-retain', '0'], /--feed-retain="0": must be a whole number ≥ 1/],
      [['hub', '--token', 'x', '--max-frame-bytes', '12k'], /--max-frame-bytes="12k"/],
      [['hub', '--token', 'x', '--store', 'mysql://u:pw@h/db'], /--store: "mysql:\/\/u:\*\*\*@h\/db" is not a postgres:\/\/ or postgresql:\/\/ URL/],
    ];
    for (const [args, re] of cases) {
      const r = aether(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
      assert.match(r.err, re);
      assert.equal(r.err.trim().split('\n').length, 1, r.err);
      assert.ok(!r.err.includes('    at '), 'no stack trace');
    }
  });

  it('a PostgreSQL store it cannot reach is one line (without the password) and exit code 1', () => {
    const r = aether(['hub', '--token', 'x', '--listen', '127.0.0.1:0', '--metrics-listen', 'off', '--store', 'postgres://aether:s3cret@127.0.0.1:1/aether']);
    assert.equal(r.code, 1, r.err);
    assert.match(r.err, /^aether: cannot use the hub store postgres:\/\/aether:\*\*\*@127\.0\.0\.1:1\/aether: .*ECONNREFUSED/);
    assert.equal(r.err.trim().split('\n').length, 1, r.err);
    assert.ok(!r.err.includes('s3cret'));
  });

  it('serves until SIGTERM; the token may come from AFS_AETHER_HUB_TOKEN; a taken port is a one-line failure', async () => {
    const hub = await spawnHub(['--listen', '127.0.0.1:0', '--data', tempDir(), '--metrics-listen', '127.0.0.1:0'], { AFS_AETHER_HUB_TOKEN: TOKEN });
    try {
      assert.match(hub.stdout(), /aether: hub listening on ws:\/\/127\.0\.0\.1:\d+\n/);
      assert.equal(await scrape(hub.metricsUrl, 'aether_hub_changefeed_seq'), 0);
      const taken = aether(['hub', '--listen', hub.url.replace('ws://', ''), '--data', tempDir(), '--token', 'x', '--metrics-listen', 'off']);
      assert.equal(taken.code, 1);
      assert.match(taken.err, /^aether: cannot listen on 127\.0\.0\.1:\d+: listen EADDRINUSE/);
      assert.ok(!hub.stderr().includes(TOKEN) && !hub.stdout().includes(TOKEN));
    } finally {
      assert.equal(await hub.stop(), 0);
    }
    assert.match(hub.stdout(), /aether: hub stopped\n$/);
  });
});
