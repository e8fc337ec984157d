import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { bin, scrape, selfSigned, spawnHub, tempDir, TOKEN } from './helpers.js';

function aether(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [bin, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, encoding: 'utf8', timeout: 15_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('aether hub (command line)', () => {
  it('bad input is one clear line and exit code 2', () => {
    const one = selfSigned();
    const two = selfSigned();
    const notPem = join(tempDir(), 'not-pem');
    writeFileSync(notPem, 'not a certificate\n');
    // The same certificate in DER, which X509Certificate reads but the TLS server does not.
    const der = join(tempDir(), 'cert.der');
    writeFileSync(der, new X509Certificate(readFileSync(one.cert)).raw);
    const cases: [string[], RegExp][] = [
      [['hub', '--data', tempDir()], /needs a token/],
      [['hub', '--token', 'x', '--tls-cert', '/nonexistent'], /--tls-cert and --tls-key go together/],
      [['hub', '--token', 'x', '--tls-cert', '/nonexistent/c.pem', '--tls-key', '/nonexistent/k.pem'], /^aether: --tls-cert \/nonexistent\/c.pem: no such file$/m],
      [['hub', '--token', 'x', '--tls-cert', notPem, '--tls-key', one.key], /^aether: --tls-cert .*not-pem: not a PEM certificate$/m],
      [['hub', '--token', 'x', '--tls-cert', der, '--tls-key', one.key], /^aether: --tls-cert .*cert\.der: not a PEM certificate$/m],
      [['hub', '--token', 'x', '--tls-cert', one.cert, '--tls-key', notPem], /^aether: --tls-key .*not-pem: not a PEM private key/m],
      [['hub', '--token', 'x', '--tls-cert', one.cert, '--tls-key', two.key], /^aether: --tls-key .*: does not belong to the certificate --tls-cert /m],
      [['hub', '--token', 'x', '--data', notPem], /^aether: --data .*not-pem is not a directory/m],
      [['hub', '--token', 'x', '--listen', 'nowhere'], /--listen="nowhere": must be HOST:PORT/],
      [['hub', '--token', 'x', '--feed-retain', '0'], /--feed-retain="0": must be a whole number ≥ 1/],
      [['hub', '--token', 'x', '--chunk-grace', '-5'], /--chunk-grace="-5": must be a whole number ≥ 0/],
      [['hub', '--token', 'x', '--chunk-grace', '1h'], /--chunk-grace="1h": must be a whole number ≥ 0/],
      [['hub', '--token', 'x', '--max-frame-bytes', '12k'], /--max-frame-bytes="12k"/],
      [['hub', '--token', 'x', '--heartbeat-ms', '50'], /--heartbeat-ms="50": must be a whole number ≥ 100 and ≤ 3600000/],
      [['hub', '--token', 'x', '--heartbeat-ms', '2147483648'], /--heartbeat-ms="2147483648": must be a whole number ≥ 100 and ≤ 3600000/],
      [['hub', '--token', 'x', '--store', 'mysql://u:pw@h/db'], /--store: "mysql:\/\/u:\*\*\*@h\/db" is not a postgres:\/\/ or postgresql:\/\/ URL/],
    ];
    for (const [args, re] of cases) {
      const r = aether(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
      assert.match(r.err, re);
      assert.equal(r.err.trim().split('\n').length, 1, r.err);
      assert.ok(!r.err.includes('    at '), 'no stack trace');
    }
    assert.equal(readFileSync(notPem, 'utf8'), 'not a certificate\n', 'a file given as --data is left alone');
  });

  it('a PostgreSQL store it cannot reach is one line (without the password) and exit code 1', () => {
    const r = aether(['hub', '--token', 'x', '--listen', '127.0.0.1:0', '--metrics-listen', 'off', '--store', 'postgres://aether:s3cret@127.0.0.1:1/aether']);
    assert.equal(r.code, 1, r.err);
    assert.match(r.err, /^aether: cannot use the hub store postgres:\/\/aether:\*\*\*@127\.0\.0\.1:1\/aether: .*ECONNREFUSED/);
    assert.equal(r.err.trim().split('\n').length, 1, r.err);
    assert.ok(!r.err.includes('s3cret'));
  });

  it('a password holding / or @, or given as a query parameter, is never printed either', () => {
    for (const url of ['postgres://aether:se/cr3t@127.0.0.1:1/aether', 'postgres://aether:s3@cr3t@127.0.0.1:1/aether', 'postgres://aether@127.0.0.1:1/aether?password=s3cr3t']) {
      const r = aether(['hub', '--token', 'x', '--listen', '127.0.0.1:0', '--metrics-listen', 'off', '--store', url]);
      assert.equal(r.code, 1, r.err);
      assert.match(r.err, /^aether: cannot use the hub store postgres:\/\//);
      assert.equal(r.err.trim().split('\n').length, 1, r.err);
      assert.ok(!/cr3t|se\//.test(r.err), r.err);
    }
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

  it('a second hub on the same data directory is refused in one line (exit 1) and changes nothing; after the first stops, it starts', async () => {
    const data = tempDir();
    const hub = await spawnHub(['--listen', '127.0.0.1:0', '--data', data, '--metrics-listen', 'off', '--token', TOKEN]);
    let hubPid = 0;
    try {
      hubPid = Number(readFileSync(join(data, 'lock'), 'utf8').trim());
      const second = aether(['hub', '--listen', '127.0.0.1:0', '--data', data, '--token', TOKEN, '--metrics-listen', 'off']);
      assert.equal(second.code, 1, second.out + second.err);
      assert.equal(second.err.trim().split('\n').length, 1, second.err);
      assert.match(second.err, new RegExp(`^aether: data directory ${data} is in use by another hub \\(process ${hubPid}\\); stop it first`));
      assert.equal(Number(readFileSync(join(data, 'lock'), 'utf8').trim()), hubPid, 'the lock is still the first hub\'s');
    } finally {
      assert.equal(await hub.stop(), 0);
    }
    assert.equal(existsSync(join(data, 'lock')), false, 'the lock goes with the hub');
    const again = await spawnHub(['--listen', '127.0.0.1:0', '--data', data, '--metrics-listen', 'off', '--token', TOKEN]);
    assert.equal(await again.stop(), 0);
  });
});
