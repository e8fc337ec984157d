/**
 * A hub that is not the tree a mount followed: one started on an empty data directory, or one
 * restored from a backup. Following it replaced every mount's files with its tree (a review):
 * the mount refuses it instead, keeps what it has, and says why.
 */
import assert from 'node:assert/strict';
import { cpSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { bridgeMount, bridgeStatus, mustSync, sleep, within, withHub } from './bridge-helpers.js';
import { stopAll, stopCleanly, tempDir } from './harness.js';

after(stopAll);

describe('bridge mode: a hub that is not the tree the mount followed', () => {
  for (const c of [
    { name: 'a hub started on an empty data directory', problem: /keeps another tree \(hub id [0-9a-f-]+; this mount follows [0-9a-f-]+\): not syncing with it/ },
    { name: 'a hub restored from a backup older than what the mount has seen', problem: /is behind this mount \(.*\): restored from a backup\? Not following it/ },
  ]) {
    it(`${c.name}: the mount refuses it, keeps its files (and writes), and status says why`, async () => {
      await withHub(async (h) => {
        const a = await bridgeMount(h.hub);
        writeFileSync(join(a.mnt, 'early'), 'early');
        await mustSync(a);
        const backup = join(tempDir(), 'backup');
        if (c.problem.source.includes('behind')) {
          await h.kill9();
          cpSync(h.data, backup, { recursive: true });
          await h.restart();
          writeFileSync(join(a.mnt, 'late'), 'late');
          await mustSync(a);
        }
        await h.kill9();
        rmSync(h.data, { recursive: true });
        if (c.problem.source.includes('behind')) cpSync(backup, h.data, { recursive: true });
        writeFileSync(join(a.mnt, 'offline'), 'offline');
        await h.restart();
        await within(15_000, 'refused', () => {
          const s = bridgeStatus(a);
          assert.equal(s.state, 'refused');
          assert.match(String(s.problem), c.problem);
        });
        const mine = c.problem.source.includes('behind') ? ['early', 'late', 'offline'] : ['early', 'offline'];
        assert.deepEqual(readdirSync(a.mnt).sort(), mine);
        writeFileSync(join(a.mnt, 'after'), 'after');
        assert.equal(readFileSync(join(a.mnt, 'offline'), 'utf8'), 'offline');
        // The hub got nothing of this mount's: a new mount of it shows only its own tree.
        const b = await bridgeMount(h.hub);
        await sleep(1500);
        assert.deepEqual(readdirSync(b.mnt).sort(), c.problem.source.includes('behind') ? ['early'] : []);
        assert.deepEqual(readdirSync(a.mnt).sort(), [...mine, 'after'].sort());
        assert.equal((a.stderr().match(/not syncing with it|Not following it/g) ?? []).length, 1, 'said once');
        await stopCleanly(b);
        await stopCleanly(a);
      });
    });
  }
});
