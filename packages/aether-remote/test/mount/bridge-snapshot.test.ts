import assert from 'node:assert/strict';
import { closeSync, fsyncSync, linkSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmdirSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { CuttingProxy } from '../cutting-proxy.js';
import { seededRandom } from '../seeded-random.js';
import { bridgeMount, bridgeStatus, mountMetrics, mustSync, readOr, sleep, tree, within, withHub } from './bridge-helpers.js';
import { stopAll, stopCleanly, type MountProcess } from './harness.js';

after(stopAll);

/**
 * A hub (`hubArgs`: more flags), mount A on it, and mount B behind a proxy that does not cut:
 * the test takes the proxy down and up (a network outage for B alone). Both mounts must stop cleanly.
 */
async function withOutage(fn: (t: { a: MountProcess; b: MountProcess; proxy: CuttingProxy }) => Promise<void>, hubArgs: string[] = [], bEnv: Record<string, string> = {}): Promise<void> {
  await withHub(async (h) => {
    const proxy = new CuttingProxy(Number(h.hub.url.split(':').pop()), seededRandom(1));
    proxy.cutting = false;
    const a = await bridgeMount(h.hub);
    const b = await bridgeMount(`ws://127.0.0.1:${await proxy.listen()}`, bEnv);
    try {
      await fn({ a, b, proxy });
    } finally {
      await proxy.close();
    }
    await stopCleanly(a);
    await stopCleanly(b);
  }, hubArgs);
}

async function disconnected(m: MountProcess): Promise<void> {
  await within(5000, 'the mount notices the outage', () => assert.equal(bridgeStatus(m).connected, false));
}

describe('bridge mode: a mount behind the hub\'s retained feed', () => {
  it('gets a snapshot while mounted and shows the new tree without a restart, its own pending changes kept', async () => {
    await withOutage(async ({ a, b, proxy }) => {
      mkdirSync(join(a.mnt, 'dir'));
      for (const [name, body] of [['keep.txt', 'kept'], ['gone.txt', 'to be deleted'], ['change.txt', 'old'], ['ren.txt', 'moved'], ['dir/sub.txt', 'in dir']]) writeFileSync(join(a.mnt, name!), body!);
      await mustSync(a);
      await within(5000, 'B has A\'s tree', () => assert.deepEqual(tree(b.mnt), tree(a.mnt)));
      const before = bridgeStatus(b);

      proxy.down();
      await disconnected(b);
      writeFileSync(join(b.mnt, 'local-b.txt'), 'written on B while cut off');
      // More committed batches than the hub retains (--feed-retain 3): B's cursor falls behind the floor.
      const changes: (() => void)[] = [
        () => writeFileSync(join(a.mnt, 'new.txt'), 'new on A'),
        () => unlinkSync(join(a.mnt, 'gone.txt')),
        () => writeFileSync(join(a.mnt, 'change.txt'), 'new content, longer than before'),
        () => renameSync(join(a.mnt, 'ren.txt'), join(a.mnt, 'renamed.txt')),
        () => unlinkSync(join(a.mnt, 'dir', 'sub.txt')),
        () => rmdirSync(join(a.mnt, 'dir')),
        () => mkdirSync(join(a.mnt, 'newdir')),
        () => writeFileSync(join(a.mnt, 'newdir', 'x.txt'), 'x'),
      ];
      for (const change of changes) {
        change();
        await mustSync(a);
      }
      assert.equal(readOr(join(b.mnt, 'gone.txt')), 'to be deleted', 'B is cut off');

      proxy.up();
      // B ships its own file meanwhile, so A may hold it too: compare the rest.
      const withoutLocal = (root: string): Map<string, string> => {
        const t = tree(root);
        t.delete('local-b.txt');
        return t;
      };
      await within(10_000, 'B shows A\'s new tree', () => assert.deepEqual(withoutLocal(b.mnt), withoutLocal(a.mnt)));
      assert.equal(readFileSync(join(b.mnt, 'change.txt'), 'utf8'), 'new content, longer than before');
      assert.equal(readFileSync(join(b.mnt, 'local-b.txt'), 'utf8'), 'written on B while cut off', 'the pending local change stays');
      const after = bridgeStatus(b);
      assert.equal(after.snapshots_merged, (before.snapshots_merged as number) + 1, 'the change came as a snapshot');
      assert.match(await mountMetrics(b), /^aether_bridge_snapshots_total [2-9]/m);

      await mustSync(b);
      await within(5000, 'A gets B\'s file', () => assert.deepEqual(tree(a.mnt), tree(b.mnt)));
    }, ['--feed-retain', '3']);
  });
});

describe('bridge mode: a file the hub deleted while this mount was cut off, which it changed meanwhile', () => {
  /**
   * A makes d/f; B, cut off with its drain paused, runs `onB`; A removes d/f and commits more
   * batches than the hub retains, so B gets a snapshot when it is back. d/f then has no name in
   * B's view, whatever B did: left named (renamed or linked here, or edited and open), it read as
   * zeros, and a write shipped zeros over the conflict copy.
   */
  async function deletedDuringOutage(a: MountProcess, b: MountProcess, proxy: CuttingProxy, onB: () => void): Promise<void> {
    mkdirSync(join(a.mnt, 'd'));
    writeFileSync(join(a.mnt, 'd', 'f'), 'original content 20b');
    await mustSync(a);
    await within(5000, 'B has d/f', () => assert.equal(readOr(join(b.mnt, 'd', 'f')), 'original content 20b'));
    const before = bridgeStatus(b).snapshots_merged as number;
    assert.equal(b.ctl(['sync', 'pause']).code, 0);
    proxy.down();
    await disconnected(b);
    onB();
    unlinkSync(join(a.mnt, 'd', 'f'));
    await mustSync(a);
    for (let i = 0; i < 5; i++) {
      writeFileSync(join(a.mnt, `pad${i}`), `p${i}`);
      await mustSync(a);
    }
    proxy.up();
    await within(10_000, 'B merged a snapshot', () => assert.equal(bridgeStatus(b).snapshots_merged, before + 1));
    assert.deepEqual(readdirSync(join(b.mnt, 'd')), [], 'the file has no name in B\'s view');
    assert.equal(b.ctl(['sync', 'resume']).code, 0);
    await mustSync(b);
  }

  it('edited and open here: after the acknowledgement the descriptor reads and writes the copy', async () => {
    await withOutage(
      async ({ a, b, proxy }) => {
        let fd = -1;
        try {
          await deletedDuringOutage(a, b, proxy, () => {
            fd = openSync(join(b.mnt, 'd', 'f'), 'r+');
            writeSync(fd, 'X', 0);
          });
          writeSync(fd, 'Y', 1);
          fsyncSync(fd);
          await mustSync(b);
          const got = Buffer.alloc(40);
          assert.equal(got.subarray(0, readSync(fd, got, 0, 40, 0)).toString('latin1'), 'XYiginal content 20b');
        } finally {
          if (fd >= 0) closeSync(fd);
        }
        await within(5000, 'A and B agree; the copy in d holds both writes', () => {
          assert.deepEqual(tree(b.mnt), tree(a.mnt));
          assert.deepEqual(readdirSync(join(a.mnt, 'd')).map((n) => readFileSync(join(a.mnt, 'd', n), 'latin1')), ['XYiginal content 20b']);
        });
      },
      ['--feed-retain', '3'],
      { AFS_AETHER_CACHE_MAX_BYTES: '0' },
    );
  });

  for (const op of ['renamed', 'linked'] as const) {
    it(`${op} here: the name it has here goes too, and nothing of it stays`, async () => {
      await withOutage(
        async ({ a, b, proxy }) => {
          await deletedDuringOutage(a, b, proxy, () => (op === 'renamed' ? renameSync : linkSync)(join(b.mnt, 'd', 'f'), join(b.mnt, 'd', 'h')));
          await within(5000, 'A and B agree, d is empty', () => {
            assert.deepEqual(tree(b.mnt), tree(a.mnt));
            assert.deepEqual(readdirSync(join(a.mnt, 'd')), []);
          });
        },
        ['--feed-retain', '3'],
        { AFS_AETHER_CACHE_MAX_BYTES: '0' },
      );
    });
  }
});

describe('bridge mode: ops the hub skips', () => {
  it('count in aether_bridge_ops_skipped_total and in aether status; what they removed comes back', async () => {
    await withOutage(async ({ a, b, proxy }) => {
      writeFileSync(join(a.mnt, 'victim.txt'), 'v1');
      await mustSync(a);
      await within(5000, 'B has the file', () => assert.equal(readOr(join(b.mnt, 'victim.txt')), 'v1'));
      assert.deepEqual(bridgeStatus(b).skipped_ops, { total: 0, by_reason: {}, last: null });

      proxy.down();
      await disconnected(b);
      // B deletes the file on top of v1 while A changes it: the hub keeps the change (skipped: changed).
      unlinkSync(join(b.mnt, 'victim.txt'));
      await sleep(300);
      writeFileSync(join(a.mnt, 'victim.txt'), 'v2, changed on A');
      await mustSync(a);
      proxy.up();
      await mustSync(b);

      const s = bridgeStatus(b).skipped_ops as { total: number; by_reason: Record<string, number>; last: { journal_seq: number; reason: string } };
      assert.equal(s.total, 1);
      assert.deepEqual(s.by_reason, { changed: 1 });
      assert.equal(s.last.reason, 'changed');
      assert.ok(s.last.journal_seq > 0);
      assert.match(await mountMetrics(b), /^aether_bridge_ops_skipped_total\{reason="changed"\} 1$/m);
      assert.equal(readFileSync(join(a.mnt, 'victim.txt'), 'utf8'), 'v2, changed on A', 'the change won');
      await within(3000, 'the file the hub kept is back on B', () => assert.equal(readOr(join(b.mnt, 'victim.txt')), 'v2, changed on A'));
      assert.deepEqual(tree(b.mnt), tree(a.mnt));
    });
  });
});
