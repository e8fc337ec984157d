import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { spawnHubsOnOneDatabase, STORES, TOKEN } from '../hub/helpers.js';
import { FAST_ENV, fileWriter, readOr, syncWait, tree, within } from './bridge-helpers.js';
import { mountMustFail, startMount, status, stopAll, stopCleanly, tempDir, type MountProcess } from './harness.js';

const pgSkip = STORES.find((s) => s.kind === 'postgres')!.skip;

after(stopAll);

function bridged(urls: string[]): Promise<MountProcess> {
  return startMount({ args: ['--bridge', urls.join(',')], env: { ...FAST_ENV, AFS_AETHER_BRIDGE_TOKEN: TOKEN } });
}

describe('aether mount --bridge with several URLs', () => {
  it('a URL that is not ws:// or wss:// is one line and exit code 2, before anything mounts', async () => {
    const r = await mountMustFail({ mnt: tempDir(), stateDir: tempDir('aether-state-'), args: ['--bridge', 'ws://127.0.0.1:1,http://127.0.0.1:2'], env: { AFS_AETHER_BRIDGE_TOKEN: TOKEN } });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /bridge url "http:\/\/127\.0\.0\.1:2": must be ws:\/\/HOST:PORT or wss:\/\/HOST:PORT/);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  });
});

describe('bridge mode: two hubs on one PostgreSQL database', { skip: pgSkip }, () => {
  it('mount A on hub 1 and mount B on hub 2 converge; kill -9 of hub 1 while A writes: A goes on through hub 2, nothing lost or duplicated', async () => {
    const { h1, h2, stop } = await spawnHubsOnOneDatabase();
    try {
      const a = await bridged([h1.url, h2.url]);
      const b = await bridged([h2.url]);
      const sa = status(a) as unknown as { bridge: { hub_url: string; hub_urls: string[]; state: string } };
      assert.deepEqual([sa.bridge.hub_url, sa.bridge.hub_urls, sa.bridge.state], [h1.url, [h1.url, h2.url], 'online']);

      // Both ways, through different hubs.
      mkdirSync(join(a.mnt, 'from-a'));
      writeFileSync(join(a.mnt, 'from-a', 'x.txt'), 'written on A', { mode: 0o600 });
      writeFileSync(join(b.mnt, 'from-b.txt'), 'written on B');
      await within(3000, 'A → B', () => assert.equal(readOr(join(b.mnt, 'from-a', 'x.txt')), 'written on A'));
      await within(3000, 'B → A', () => assert.equal(readOr(join(a.mnt, 'from-b.txt')), 'written on B'));

      // Hub 1 dies while A writes: A's writes never stop; its bridge fails over to hub 2.
      const { expected, writeSome } = fileWriter(a.mnt);
      writeSome(30);
      await h1.kill9();
      writeSome(30);
      const w = syncWait(a);
      assert.equal(w.code, 0, `sync wait: ${w.out}${w.err}`);
      const online = status(a) as unknown as { bridge: { hub_url: string; connected: boolean } };
      assert.deepEqual([online.bridge.hub_url, online.bridge.connected], [h2.url, true], 'A is connected through hub 2');
      writeSome(20);
      assert.equal(syncWait(a).code, 0);
      for (const [name, body] of expected) assert.equal(readFileSync(join(a.mnt, name), 'utf8'), body, name);
      const ta = tree(a.mnt);
      assert.equal(ta.size, expected.size + 3, 'nothing lost, nothing duplicated on A');
      await within(10_000, 'B has exactly what A has, content and mode', () => assert.deepEqual(tree(b.mnt), ta));
      await stopCleanly(a);
      await stopCleanly(b);
    } finally {
      await stop();
    }
  });
});
