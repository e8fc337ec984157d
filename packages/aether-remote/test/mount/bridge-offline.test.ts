// Bridge mode when the hub goes away, and the cases after it: split from bridge.test.ts, whose
// suites together came near the test runner's 10-minute limit for one file on a busy machine.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, fstatSync, linkSync, mkdirSync, openSync, readSync, readdirSync, readFileSync, renameSync, rmdirSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { TOKEN } from '../hub/helpers.js';
import { bBehindA, bridgeMount, bridgeStatus, FAST_ENV, fileWriter, mountMetrics, overwrite, readOr, sameTreeOfOneFile, show, sleep, syncWait, tree, twoMountsSharingDirD, within, withHub } from './bridge-helpers.js';
import { dashboardMetricNames, mountMustFail, startMount, status, stopAll, stopCleanly, tempDir, type MountProcess } from './harness.js';

after(stopAll);

describe('bridge mode: the hub goes away', () => {
  it('kill -9 of the hub while A writes: A goes on offline, drains after the restart, B catches up, trees identical', async () => {
    await withHub(async (h) => {
      const a = await bridgeMount(h.hub);
      const b = await bridgeMount(h.hub);
      const { expected, writeSome } = fileWriter(a.mnt);
      writeSome(30);
      await h.kill9();
      writeSome(30); // the hub is gone: these land in A's journal only
      await sleep(300);
      const offline = status(a) as unknown as { bridge: { state: string; connected: boolean }; journal: { pending_entries: number } };
      assert.equal(offline.bridge.connected, false);
      assert.ok(['backing off', 'connecting'].includes(offline.bridge.state), offline.bridge.state);
      assert.ok(offline.journal.pending_entries > 0, 'A holds what it could not ship');
      writeSome(20);
      await h.restart();
      const w = syncWait(a);
      assert.equal(w.code, 0, `sync wait: ${w.out}${w.err}`);
      const ta = tree(a.mnt);
      assert.equal(ta.size, expected.size, 'nothing lost, nothing duplicated on A');
      for (const [name, body] of expected) assert.equal(readFileSync(join(a.mnt, name), 'utf8'), body, name);
      await within(10_000, 'B catches up', () => assert.deepEqual(tree(b.mnt), ta));
      await stopCleanly(a);
      await stopCleanly(b);
    });
  });

  it('sync pause while the hub is down holds back the batch already waiting for it too: nothing ships after the reconnect until resume', async () => {
    await withHub(async (h) => {
      const a = await bridgeMount(h.hub);
      const b = await bridgeMount(h.hub);
      await h.kill9();
      writeFileSync(join(a.mnt, 'before-pause'), 'x');
      // The drain hands the batch to the client within ~20 ms; it waits there for the hub.
      await sleep(500);
      assert.equal(a.ctl(['sync', 'pause']).code, 0);
      writeFileSync(join(a.mnt, 'after-pause'), 'y');
      await h.restart();
      await within(15_000, 'A and B online again', () => assert.ok(bridgeStatus(a).connected === true && bridgeStatus(b).connected === true));
      await sleep(1500);
      assert.deepEqual(readdirSync(b.mnt), [], 'nothing of the paused mount shipped');
      assert.equal(a.ctl(['sync', 'resume']).code, 0);
      assert.equal(syncWait(a).code, 0);
      await within(5000, 'B has both', () => assert.deepEqual(readdirSync(b.mnt).sort(), ['after-pause', 'before-pause']));
      await stopCleanly(a);
      await stopCleanly(b);
    });
  });

  it('a restart while the hub is down: the replica serves reads, writes queue, the cursor resumes, all drains later', async () => {
    await withHub(async (h) => {
      let a = await bridgeMount(h.hub);
      writeFileSync(join(a.mnt, 'before.txt'), 'written online');
      mkdirSync(join(a.mnt, 'dir'));
      assert.equal(syncWait(a).code, 0);
      const before = status(a) as unknown as { bridge: { cursor: number; ino_base: number } };
      assert.ok(before.bridge.cursor > 0);
      assert.ok(before.bridge.ino_base >= 2 ** 32, 'a mount numbers inodes from the range the hub assigned');
      await stopCleanly(a);
      await h.kill9();
      a = await startMount({ mnt: a.mnt, stateDir: a.stateDir, args: ['--bridge', h.hub.url], env: { ...FAST_ENV, AFS_AETHER_BRIDGE_TOKEN: TOKEN } });
      assert.equal(readFileSync(join(a.mnt, 'before.txt'), 'utf8'), 'written online', 'committed content comes from the replica');
      writeFileSync(join(a.mnt, 'dir', 'offline.txt'), 'written offline');
      const off = status(a) as unknown as { bridge: { cursor: number; connected: boolean; state: string; problem: string | null; offline_since: string | null } };
      assert.equal(off.bridge.connected, false);
      assert.equal(off.bridge.cursor, before.bridge.cursor, 'the cursor persisted in the replica');
      // Why nothing drains, and since when.
      assert.match(off.bridge.problem ?? '', /^connection to ws:\/\/127\.0\.0\.1:\d+: connect ECONNREFUSED/);
      assert.ok(Date.parse(off.bridge.offline_since ?? '') <= Date.now());
      const waited = syncWait(a, 1);
      assert.equal(waited.code, 1, 'sync wait times out while the hub is down');
      assert.match(waited.err, /pending \(the hub is unreachable since \S+: connection to ws:\/\/.*ECONNREFUSED/);
      await h.restart();
      assert.equal(syncWait(a).code, 0);
      const on = status(a) as unknown as { bridge: { problem: string | null; offline_since: string | null } };
      assert.deepEqual([on.bridge.problem, on.bridge.offline_since], [null, null], 'cleared by the welcome');
      const b = await bridgeMount(h.hub);
      assert.equal(readFileSync(join(b.mnt, 'before.txt'), 'utf8'), 'written online');
      assert.equal(readFileSync(join(b.mnt, 'dir', 'offline.txt'), 'utf8'), 'written offline');
      await stopCleanly(a);
      await stopCleanly(b);
    });
  });

  it('a hub that goes silent without closing (SIGSTOP): status names the silence while still connected, offline_since is when the hub was last heard, and the reconnect is logged', async () => {
    await withHub(
      async (h) => {
        const a = await bridgeMount(h.hub);
        writeFileSync(join(a.mnt, 'before.txt'), 'x');
        assert.equal(syncWait(a).code, 0);
        type Bridge = { connected: boolean; problem: string | null; offline_since: string | null; last_heard: string | null };
        const heardBefore = Date.parse((status(a) as unknown as { bridge: Bridge }).bridge.last_heard ?? '');
        assert.ok(Date.now() - heardBefore < 5000, 'the hub was heard within the last heartbeats');
        h.hub.proc.kill('SIGSTOP');
        try {
          writeFileSync(join(a.mnt, 'during.txt'), 'y');
          // 2 s heartbeats: named after 3 s of silence, given up after 6 s.
          let silent: Bridge | undefined;
          await within(5_000, 'status names the silence', () => {
            const b = (status(a) as unknown as { bridge: Bridge }).bridge;
            assert.ok(b.connected, 'still connected');
            assert.match(b.problem ?? '', /^nothing from the hub for \d+\.\d s \(it pings every 2000 ms; reconnecting after 6000 ms of silence\)$/);
            silent = b;
          });
          const waited = syncWait(a, 1);
          assert.equal(waited.code, 1);
          assert.match(waited.err, new RegExp(`pending \\(the hub is unreachable since ${silent!.last_heard!.replace(/[.]/g, '\\.')}: nothing from the hub for `));
          await within(8_000, 'the connection is given up', () => {
            const b = (status(a) as unknown as { bridge: Bridge }).bridge;
            assert.equal(b.connected, false);
            assert.equal(b.offline_since, silent!.last_heard, 'offline since the hub was last heard');
            assert.equal(b.problem, 'nothing from the hub for 6000 ms');
          });
        } finally {
          h.hub.proc.kill('SIGCONT');
        }
        assert.equal(syncWait(a).code, 0);
        const b = (status(a) as unknown as { bridge: Bridge }).bridge;
        assert.deepEqual([b.connected, b.problem, b.offline_since], [true, null, null]);
        // The dashboard's bridge panels query series a bridge mount serves.
        const text = await mountMetrics(a);
        const { bridge } = dashboardMetricNames();
        assert.ok(bridge.includes('aether_bridge_last_heard_timestamp_seconds'), bridge.join(' '));
        for (const name of bridge) assert.match(text, new RegExp(`^(# HELP )?${name}[{ ]`, 'm'), `dashboard queries ${name}`);
        const heard = Number(/^aether_bridge_last_heard_timestamp_seconds (\S+)$/m.exec(text)?.[1]);
        assert.ok(Math.abs(heard * 1000 - Date.parse(b.last_heard ?? '')) < 5000, `metric ${heard}, status ${b.last_heard}`);
        // Read by this process's event loop, which the synchronous status calls held.
        await within(3_000, 'the reconnect is logged', () =>
          assert.match(a.stderr(), /bridge: nothing from the hub for 6000 ms; reconnecting\n(.*\n)*\S+Z aether: bridge: connected to ws:\/\/\S+ again, offline for \d+\.\d s \(nothing from the hub for 6000 ms\)\n/),
        );
        await stopCleanly(a);
      },
      ['--heartbeat-ms', '2000'],
    );
  });

  it('small thresholds with the hub down: writes block, reads work, writes resume when the hub returns', async () => {
    await withHub(async (h) => {
      const a = await bridgeMount(h.hub, { AFS_AETHER_JOURNAL_HIGH_WATER_ENTRIES: '60', AFS_AETHER_JOURNAL_LOW_WATER_ENTRIES: '10' });
      writeFileSync(join(a.mnt, 'existing.txt'), 'still readable');
      assert.equal(syncWait(a).code, 0);
      await h.kill9();
      const script = `const fs=require('fs');for(let i=0;i<200;i++){fs.writeFileSync(${JSON.stringify(a.mnt)}+'/w'+i,'x'.repeat(100));console.log('ok '+i)}`;
      const writer = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
      let done = 0;
      writer.stdout.setEncoding('utf8').on('data', (d: string) => (done += d.split('\n').filter((l) => l.startsWith('ok')).length));
      // 'close': every line the writer printed has been read by then ('exit' may come first).
      const exited = new Promise<number | null>((r) => writer.once('close', (c) => r(c)));
      let last = -1;
      for (let quiet = 0; quiet < 15; ) {
        await sleep(100);
        if (done === last) quiet++;
        else {
          quiet = 0;
          last = done;
        }
      }
      assert.ok(done < 200, `the writer finished all ${done} writes with the hub down`);
      const bp = JSON.parse(a.ctl(['backpressure', 'status', '--json']).out) as { engaged: boolean; journal: { reasons: string[] } };
      assert.equal(bp.engaged, true);
      assert.deepEqual(bp.journal.reasons, ['entries']);
      const cat = spawnSync('cat', [join(a.mnt, 'existing.txt')], { encoding: 'utf8', timeout: 5000 });
      assert.equal(cat.stdout, 'still readable', 'reads never wait for the hub');
      await h.restart();
      assert.equal(await exited, 0);
      assert.equal(done, 200);
      assert.equal(syncWait(a).code, 0);
      await within(3000, 'backpressure clears', () => assert.equal((JSON.parse(a.ctl(['backpressure', 'status', '--json']).out) as { engaged: boolean }).engaged, false));
      await stopCleanly(a);
    });
  });

  it('the same file edited on A and B while the hub is down: one winner, one conflict copy, identical on both', async () => {
    await withHub(async (h) => {
      const a = await bridgeMount(h.hub);
      const b = await bridgeMount(h.hub);
      writeFileSync(join(a.mnt, 'doc.txt'), 'original');
      await within(2000, 'doc.txt reaches B', () => assert.equal(readOr(join(b.mnt, 'doc.txt')), 'original'));
      await h.kill9();
      writeFileSync(join(a.mnt, 'doc.txt'), 'edited on A');
      writeFileSync(join(b.mnt, 'doc.txt'), 'edited on B, longer');
      await sleep(200);
      await h.restart();
      assert.equal(syncWait(a).code, 0);
      assert.equal(syncWait(b).code, 0);
      await within(5000, 'A and B agree', () => {
        const ta = tree(a.mnt);
        assert.deepEqual(tree(b.mnt), ta);
        const names = [...ta.keys()].sort();
        assert.equal(names.length, 2, names.join(', '));
        assert.equal(names[1], 'doc.txt');
        assert.match(names[0]!, /^doc\.conflict-[0-9a-f-]{36}-\d{8}T\d{6}Z\.txt$/);
        const bodies = names.map((n) => readFileSync(join(a.mnt, n), 'utf8')).sort();
        assert.deepEqual(bodies, ['edited on A', 'edited on B, longer'], 'both edits are kept, one in the copy');
      });
      await stopCleanly(a);
      await stopCleanly(b);
    });
  });

  it('a save through a temporary file renamed over the original, or an rm, made before another mount\'s edit of the file arrived, keeps that edit', async () => {
    await withHub(async (h) => {
      const a = await bridgeMount(h.hub);
      const b = await bridgeMount(h.hub);
      writeFileSync(join(a.mnt, 'r'), 'base r');
      writeFileSync(join(a.mnt, 'u'), 'base u');
      await within(2000, 'r and u reach B', () => assert.equal(readOr(join(b.mnt, 'u')), 'base u'));
      await bBehindA(
        a,
        b,
        () => {
          writeFileSync(join(b.mnt, '.r.tmp'), 'B saved via temp+rename');
          renameSync(join(b.mnt, '.r.tmp'), join(b.mnt, 'r'));
          unlinkSync(join(b.mnt, 'u'));
        },
        () => {
          writeFileSync(join(a.mnt, 'r'), 'A edit of r');
          writeFileSync(join(a.mnt, 'u'), 'A edit of u');
        },
      );
      await within(5000, 'A and B agree, nothing lost', () => {
        const ta = tree(a.mnt);
        assert.deepEqual(tree(b.mnt), ta);
        assert.equal(readFileSync(join(a.mnt, 'r'), 'utf8'), 'A edit of r', 'the edit B had not seen keeps the name');
        assert.equal(readFileSync(join(a.mnt, 'u'), 'utf8'), 'A edit of u', 'a delete loses against an edit it did not see');
        const saved = [...ta.keys()].filter((n) => n.startsWith('r.conflict-'));
        assert.equal(saved.length, 1, [...ta.keys()].join(', '));
        assert.equal(readFileSync(join(a.mnt, saved[0]!), 'utf8'), 'B saved via temp+rename', 'B\'s save is kept under a conflict name');
      });
      await stopCleanly(a);
      await stopCleanly(b);
    });
  });

  it('a file made in a directory another mount removed meanwhile lands in the root under a conflict name, on every mount, and the directory is gone everywhere', async () => {
    await withHub(async (h) => {
      const a = await bridgeMount(h.hub);
      const c = await bridgeMount(h.hub);
      mkdirSync(join(a.mnt, 'dq'));
      writeFileSync(join(a.mnt, 'dq', 'e'), 'e');
      await within(2000, 'dq/e reaches C', () => assert.equal(readOr(join(c.mnt, 'dq', 'e')), 'e'));
      await bBehindA(
        a,
        c,
        () => writeFileSync(join(c.mnt, 'dq', 'n'), 'new on C'),
        () => {
          unlinkSync(join(a.mnt, 'dq', 'e'));
          rmdirSync(join(a.mnt, 'dq'));
        },
      );
      await within(5000, 'A and C agree', () => {
        const ta = tree(a.mnt);
        assert.deepEqual(tree(c.mnt), ta);
        const names = [...ta.keys()];
        assert.equal(names.length, 1, names.join(', '));
        assert.match(names[0]!, /^n\.conflict-/);
        assert.equal(readFileSync(join(c.mnt, names[0]!), 'utf8'), 'new on C');
        assert.equal(existsSync(join(c.mnt, 'dq')), false, 'the removed directory is gone on C too');
      });
      await stopCleanly(a);
      await stopCleanly(c);
    });
  });

  it('an edit shipped after another mount\'s edit of the same file arrived is a conflict: the first committed wins, the other is kept whole in a copy', async () => {
    await withHub(async (h) => {
      const a = await bridgeMount(h.hub);
      const b = await bridgeMount(h.hub);
      const rounds: [string, string][] = [
        ['A', 'a long line written on mount B'],
        ['a longer line written on mount A', 'B'],
      ];
      for (const [round, [onA, onB]] of rounds.entries()) {
        const name = `p${round}.txt`;
        writeFileSync(join(a.mnt, name), 'base');
        await within(2000, `${name} reaches B`, () => assert.equal(readOr(join(b.mnt, name)), 'base'));
        // B edits while its drain is paused; A's edit reaches the hub, and B, first.
        await bBehindA(
          a,
          b,
          () => writeFileSync(join(b.mnt, name), onB),
          () => writeFileSync(join(a.mnt, name), onA),
          () => assert.equal(readFileSync(join(b.mnt, name), 'utf8'), onB, 'B keeps showing its own unshipped version, whole'),
        );
        await within(5000, 'A and B agree', () => {
          const ta = tree(a.mnt);
          assert.deepEqual(tree(b.mnt), ta);
          const copies = [...ta.keys()].filter((n) => n.startsWith(`p${round}.conflict-`));
          assert.equal(copies.length, 1, [...ta.keys()].join(', '));
          assert.equal(readFileSync(join(a.mnt, name), 'utf8'), onA, 'the edit committed first stays');
          assert.equal(readFileSync(join(a.mnt, copies[0]!), 'utf8'), onB, 'the later one is kept whole, not cut to the other length');
          assert.equal(readFileSync(join(b.mnt, name), 'utf8'), onA);
        });
      }
      await stopCleanly(a);
      await stopCleanly(b);
    });
  });

  for (const how of ['rm', 'a rename over it'] as const) {
    it(`a file edited here, then removed here by ${how} after another mount's edit of it arrived (still showing this mount's edit): the other edit stays`, async () => {
      await withHub(async (h) => {
        const a = await bridgeMount(h.hub);
        const b = await bridgeMount(h.hub);
        writeFileSync(join(a.mnt, 'f'), 'base');
        await within(2000, 'f reaches B', () => assert.equal(readOr(join(b.mnt, 'f')), 'base'));
        await bBehindA(
          a,
          b,
          () => writeFileSync(join(b.mnt, 'f'), 'B edit'),
          () => writeFileSync(join(a.mnt, 'f'), 'A edit'),
          () => {
            // B's view shows its own edit over A's, so B removes what it believes is its edit.
            assert.equal(readFileSync(join(b.mnt, 'f'), 'utf8'), 'B edit');
            if (how === 'rm') unlinkSync(join(b.mnt, 'f'));
            else {
              writeFileSync(join(b.mnt, 'g'), 'B new');
              renameSync(join(b.mnt, 'g'), join(b.mnt, 'f'));
            }
          },
        );
        await within(5000, 'A and B agree, A\'s edit kept', () => {
          const ta = tree(a.mnt);
          assert.deepEqual(tree(b.mnt), ta);
          const byContent = new Map([...ta.keys()].map((n) => [readFileSync(join(a.mnt, n), 'utf8'), n]));
          assert.ok(byContent.has('A edit'), `A's edit B never saw is kept: ${show(a).join(', ')}`);
          if (how === 'rm') assert.deepEqual([...byContent.values()].sort(), ['f', byContent.get('B edit')!].sort(), show(a).join(', '));
          else assert.ok(byContent.has('B new'), show(a).join(', '));
        });
        await stopCleanly(a);
        await stopCleanly(b);
      });
    });
  }

  it('a second name of a file edited here, removed here after another mount\'s edit arrived: it stays removed (the content lives on under the first)', async () => {
    await withHub(async (h) => {
      const a = await bridgeMount(h.hub);
      const b = await bridgeMount(h.hub);
      writeFileSync(join(a.mnt, 'f'), 'base');
      linkSync(join(a.mnt, 'f'), join(a.mnt, 'h'));
      await within(2000, 'f and h reach B', () => assert.equal(readOr(join(b.mnt, 'h')), 'base'));
      await bBehindA(
        a,
        b,
        () => writeFileSync(join(b.mnt, 'f'), 'B edit'),
        () => writeFileSync(join(a.mnt, 'f'), 'A edit'),
        () => unlinkSync(join(b.mnt, 'h')),
      );
      await within(5000, 'A and B agree: f holds A\'s edit, B\'s in a copy, h gone', () => {
        const ta = tree(a.mnt);
        assert.deepEqual(tree(b.mnt), ta);
        assert.equal(ta.has('h'), false, show(a).join(', '));
        assert.equal(readFileSync(join(a.mnt, 'f'), 'utf8'), 'A edit');
        const copies = [...ta.keys()].filter((n) => n.startsWith('f.conflict-'));
        assert.deepEqual(copies.map((n) => readFileSync(join(a.mnt, n), 'utf8')), ['B edit'], show(a).join(', '));
      });
      await stopCleanly(a);
      await stopCleanly(b);
    });
  });

  it('a file made here in place of one another mount removes meanwhile: the other mount\'s unlink of the old file leaves the new one (ops follow inodes)', async () => {
    await withHub(async (h) => {
      const a = await bridgeMount(h.hub);
      const b = await bridgeMount(h.hub);
      mkdirSync(join(a.mnt, 'd1'));
      writeFileSync(join(a.mnt, 'd1', 'f0'), 'old');
      await within(5000, 'd1/f0 reaches B', () => assert.equal(readOr(join(b.mnt, 'd1', 'f0')), 'old'));
      await bBehindA(
        b,
        a,
        () => {
          unlinkSync(join(a.mnt, 'd1', 'f0'));
          writeFileSync(join(a.mnt, 'd1', 'f0'), 'new on A');
        },
        () => unlinkSync(join(b.mnt, 'd1', 'f0')),
        () => assert.equal(readFileSync(join(a.mnt, 'd1', 'f0'), 'utf8'), 'new on A', 'B\'s unlink of the old file leaves A\'s new one'),
      );
      await within(5000, 'both show A\'s new file', () => {
        for (const m of [a, b]) assert.deepEqual(show(m), ['d1', 'd1/f0=new on A']);
      });
      await stopCleanly(a);
      await stopCleanly(b);
    });
  });

  it('a rename of a name another mount gave to another file meanwhile moves the file\'s other name at the hub, and this mount follows', async () => {
    await withHub(async (h) => {
      const a = await bridgeMount(h.hub);
      const b = await bridgeMount(h.hub);
      mkdirSync(join(a.mnt, 'd'));
      writeFileSync(join(a.mnt, 'f'), 'x');
      linkSync(join(a.mnt, 'f'), join(a.mnt, 'd', 'h'));
      await within(5000, 'f and d/h reach B', () => assert.equal(readOr(join(b.mnt, 'd', 'h')), 'x'));
      await bBehindA(
        a,
        b,
        () => renameSync(join(b.mnt, 'f'), join(b.mnt, 'g')),
        () => {
          writeFileSync(join(a.mnt, 'f2'), 'y');
          renameSync(join(a.mnt, 'f2'), join(a.mnt, 'f'));
        },
      );
      // The hub found the file B renamed under d/h only, and moved that name: B hears so.
      await within(5000, 'A and B agree with the hub', () => {
        for (const m of [a, b]) assert.deepEqual(show(m), ['d', 'f=y', 'g=x']);
      });
      await stopCleanly(a);
      await stopCleanly(b);
    });
  });

  it('a file another mount deletes while it is open here reads on through the open descriptor until it is closed', async () => {
    await withHub(async (h) => {
      const a = await bridgeMount(h.hub);
      const b = await bridgeMount(h.hub);
      const body = 'still here for the open descriptor\n'.repeat(3000);
      writeFileSync(join(a.mnt, 'o'), body);
      assert.equal(syncWait(a).code, 0);
      await within(5000, 'B has o', () => assert.equal(statSync(join(b.mnt, 'o')).size, body.length));
      // Opened, not read: no cached copy of its content on B.
      const fd = openSync(join(b.mnt, 'o'), 'r');
      try {
        unlinkSync(join(a.mnt, 'o'));
        assert.equal(syncWait(a).code, 0);
        await within(5000, 'B received the delete', () => assert.equal(existsSync(join(b.mnt, 'o')), false));
        const got = Buffer.alloc(body.length + 10);
        assert.equal(readSync(fd, got, 0, got.length, 0), body.length);
        assert.ok(got.subarray(0, body.length).equals(Buffer.from(body)), 'the whole content reads');
      } finally {
        closeSync(fd);
      }
      assert.deepEqual([...tree(b.mnt).keys()], []);
      await stopCleanly(a);
      await stopCleanly(b);
    });
  });

  for (const restart of [false, true]) {
    it(`a file edited here in a directory another mount removed meanwhile is kept under a conflict name, the same on every mount${restart ? ', also after kill -9 and a restart' : ''}`, async () => {
      await withHub(async (h) => {
        const a = await bridgeMount(h.hub);
        let b = await bridgeMount(h.hub);
        mkdirSync(join(a.mnt, 'dr'));
        writeFileSync(join(a.mnt, 'dr', 'e'), 'original content');
        assert.equal(syncWait(a).code, 0);
        await within(5000, 'B has dr/e', () => assert.equal(statSync(join(b.mnt, 'dr', 'e')).size, 16));
        assert.equal(b.ctl(['sync', 'pause']).code, 0);
        overwrite(join(b.mnt, 'dr', 'e'), 0, 'EDITED');
        unlinkSync(join(a.mnt, 'dr', 'e'));
        rmdirSync(join(a.mnt, 'dr'));
        assert.equal(syncWait(a).code, 0);
        await within(5000, 'B received the removal', () => assert.equal(existsSync(join(b.mnt, 'dr')), false));
        if (restart) {
          await b.kill9();
          b = await bridgeMount(h.hub, {}, { mnt: b.mnt, stateDir: b.stateDir });
        } else assert.equal(b.ctl(['sync', 'resume']).code, 0);
        assert.equal(syncWait(b).code, 0);
        await within(5000, 'A and B agree, B\'s edit kept whole', () => sameTreeOfOneFile(a, b, 'EDITEDal content'));
        await stopCleanly(a);
        await stopCleanly(b);
      });
    });
  }

  it('a partial edit shipped after another mount\'s edit of the file arrived is kept on the version it was made on, not over the other edit\'s bytes', async () => {
    await withHub(async (h) => {
      const a = await bridgeMount(h.hub);
      const b = await bridgeMount(h.hub);
      writeFileSync(join(a.mnt, 'p'), 'aaaaaaaaaabbbbbbbbbb');
      assert.equal(syncWait(a).code, 0);
      // Not read on B: no clean cached copy of the old version there to fall back on.
      await within(5000, 'B has p', () => assert.equal(statSync(join(b.mnt, 'p')).size, 20));
      await bBehindA(
        a,
        b,
        () => overwrite(join(b.mnt, 'p'), 0, 'X'),
        () => writeFileSync(join(a.mnt, 'p'), 'new content from A!'),
        () => assert.equal(readFileSync(join(b.mnt, 'p'), 'utf8'), 'Xaaaaaaaaabbbbbbbbbb', 'B shows its own version, whole'),
      );
      await within(5000, 'A and B agree', () => {
        const ta = tree(a.mnt);
        assert.deepEqual(tree(b.mnt), ta);
        assert.equal(readFileSync(join(a.mnt, 'p'), 'utf8'), 'new content from A!');
        const copies = [...ta.keys()].filter((n) => n.startsWith('p.conflict-'));
        assert.equal(copies.length, 1, [...ta.keys()].join(', '));
        assert.equal(readFileSync(join(a.mnt, copies[0]!), 'utf8'), 'Xaaaaaaaaabbbbbbbbbb', 'the copy is B\'s version, not X over A\'s bytes');
        assert.equal(readFileSync(join(b.mnt, 'p'), 'utf8'), 'new content from A!');
      });
      await stopCleanly(a);
      await stopCleanly(b);
    });
  });

  it('an edit made before another mount\'s edit of the file arrived is still a conflict after kill -9 and a restart (the base it was made on is kept)', async () => {
    await withHub(async (h) => {
      const a = await bridgeMount(h.hub);
      let b = await bridgeMount(h.hub);
      writeFileSync(join(a.mnt, 'k'), 'first version');
      writeFileSync(join(a.mnt, 'other'), 'x');
      assert.equal(syncWait(a).code, 0);
      await within(5000, 'B has k', () => assert.equal(readOr(join(b.mnt, 'k')), 'first version'));
      assert.equal(b.ctl(['sync', 'pause']).code, 0);
      // Part of the file: the rest is the version B had, which the replica replaces with A's.
      overwrite(join(b.mnt, 'k'), 0, 'FIRST');
      writeFileSync(join(a.mnt, 'k'), 'A edit');
      assert.equal(syncWait(a).code, 0);
      // A later remote change too: the marks keep the cursor of B's edit, not the last one.
      writeFileSync(join(a.mnt, 'other'), 'y');
      assert.equal(syncWait(a).code, 0);
      await within(5000, 'B received A\'s changes', () => assert.equal(readOr(join(b.mnt, 'other')), 'y'));
      await b.kill9();
      b = await bridgeMount(h.hub, {}, { mnt: b.mnt, stateDir: b.stateDir });
      assert.equal(syncWait(b).code, 0);
      await within(5000, 'A and B agree, nothing lost', () => {
        const ta = tree(a.mnt);
        assert.deepEqual(tree(b.mnt), ta);
        assert.equal(readFileSync(join(a.mnt, 'k'), 'utf8'), 'A edit', 'the edit committed first stays');
        const copies = [...ta.keys()].filter((n) => n.startsWith('k.conflict-'));
        assert.equal(copies.length, 1, [...ta.keys()].join(', '));
        assert.equal(readFileSync(join(b.mnt, copies[0]!), 'utf8'), 'FIRST version', 'B\'s edit is kept in a conflict copy, on the version it was made on');
      });
      await stopCleanly(a);
      await stopCleanly(b);
    });
  });
});

describe('bridge mode: once nothing is pending, the view is the hub\'s tree', () => {
  it('A writes d/x while B removes d and makes a new d with y: A shows the new d/y and x under its conflict name, as B and a new mount do', async () => {
    await withHub(async (h) => {
      const { a, b } = await twoMountsSharingDirD(h.hub);
      // A's view cannot take B's changes as they come (its own d/x is pending in the old d): the
      // rmdir fails here, and so do the new d and the y made in it.
      await bBehindA(
        b,
        a,
        () => writeFileSync(join(a.mnt, 'd', 'x'), 'A wrote x'),
        () => {
          rmdirSync(join(b.mnt, 'd'));
          mkdirSync(join(b.mnt, 'd'));
          writeFileSync(join(b.mnt, 'd', 'y'), 'B wrote y');
        },
      );
      const c = await bridgeMount(h.hub);
      const named = (m: MountProcess): string[] => show(m).map((n) => n.replace(/conflict-[^=]*/, 'conflict'));
      await within(5000, 'A, B and C agree', () => {
        assert.deepEqual(named(c), ['d', 'd/y=B wrote y', 'x.conflict=A wrote x']);
        assert.deepEqual(named(b), named(c));
        assert.deepEqual(named(a), named(c));
      });
      const repairs = bridgeStatus(a).view_repairs as { total: number; last: { named: number } };
      assert.ok(repairs.total >= 1 && repairs.last.named >= 1, JSON.stringify(repairs));
      for (const m of [a, b, c]) await stopCleanly(m);
    });
  });
});

describe('bridge mode: a mount point whose server hangs', () => {
  // Bridge mounts let the kernel cache attributes for 1 s (local mode: 60 s), so the hang is reached soon.
  it('a new mount there is refused in one line within seconds, and exits, without stat-ing it for good', { timeout: 60_000 }, async () => {
    await withHub(async (h) => {
      const a = await bridgeMount(h.hub);
      a.proc.kill('SIGSTOP');
      try {
        await sleep(1500);
        const started = Date.now();
        const r = await mountMustFail({ mnt: a.mnt, stateDir: join(tempDir(), 'state') }, 30_000);
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr, /^aether: cannot mount .*: mount point .* is already mounted; unmount it first\n$/);
        assert.ok(Date.now() - started < 15_000, `took ${Date.now() - started} ms`);
      } finally {
        a.proc.kill('SIGCONT');
      }
      await stopCleanly(a);
    });
  });
});

describe('bridge mode: a rename of a name onto itself that another mount just removed', () => {
  // Without the binding's answer the rename and every later request under that name hang: the timeout fails the test.
  it('fails with ENOENT instead of hanging (libfuse 2.9 waited on its own path lock for good)', { timeout: 90_000 }, async () => {
    await withHub(async (h) => {
      const a = await bridgeMount(h.hub);
      const b = await bridgeMount(h.hub);
      // A's kernel still holds the name (1 s) when B's removal reaches A's view: the rename's
      // source is found in A's cache, its target (always looked up again) is gone, and the kernel
      // sends FUSE a rename of the name onto itself.
      let sent = 0;
      for (let round = 0; round < 5 && sent === 0; round++) {
        const name = `d${round}`;
        mkdirSync(join(a.mnt, `${name}.tmp`));
        assert.equal(syncWait(a).code, 0);
        await within(5000, 'B has it', () => assert.ok(existsSync(join(b.mnt, `${name}.tmp`))));
        // A's kernel gets the name from A's own rename (as in the fuzz run that hung).
        renameSync(join(a.mnt, `${name}.tmp`), join(a.mnt, name));
        assert.equal(syncWait(a).code, 0);
        await within(5000, 'B has it', () => assert.ok(existsSync(join(b.mnt, name))));
        statSync(join(a.mnt, name));
        const t0 = Date.now();
        rmdirSync(join(b.mnt, name));
        // Listing the root leaves the kernel's entry for the name alone.
        while (readdirSync(a.mnt).includes(name) && Date.now() - t0 < 900) await sleep(5);
        if (Date.now() - t0 >= 900) continue;
        const r = spawnSync(process.execPath, ['-e', `try { require('fs').renameSync(${JSON.stringify(join(a.mnt, name))}, ${JSON.stringify(join(a.mnt, name))}); console.log('ok') } catch (e) { console.log(e.code) }`], { encoding: 'utf8', timeout: 10_000 });
        assert.equal(r.signal, null, 'rename(2) hung');
        assert.equal(r.stdout.trim(), 'ENOENT');
        sent = Date.now() - t0 < 1000 ? 1 : 0;
      }
      assert.equal(sent, 1, 'the kernel never had the name cached in time: nothing was tested');
      await stopCleanly(a);
      await stopCleanly(b);
    });
  });
});

describe('bridge mode: open files unlinked here', () => {
  it('a file unlinked here while open, never read here: once the unlink is acknowledged the descriptor still reads its bytes', async () => {
    await withHub(async (h) => {
      const a = await bridgeMount(h.hub);
      const b = await bridgeMount(h.hub);
      writeFileSync(join(a.mnt, 'f'), 'F'.repeat(100_000));
      assert.equal(syncWait(a).code, 0);
      await within(5000, 'B has f', () => assert.equal(statSync(join(b.mnt, 'f')).size, 100_000));
      const fd = openSync(join(b.mnt, 'f'), 'r');
      try {
        unlinkSync(join(b.mnt, 'f'));
        assert.equal(syncWait(b).code, 0);
        await sleep(1500);
        const got = Buffer.alloc(10);
        assert.equal(fstatSync(fd).size, 100_000);
        assert.equal(readSync(fd, got, 0, 10, 50_000), 10);
        assert.equal(got.toString(), 'FFFFFFFFFF', 'not zeros: the replica keeps the version until it is closed');
      } finally {
        closeSync(fd);
      }
      await stopCleanly(a);
      await stopCleanly(b);
    });
  });

  for (const remake of [false, true]) {
    it(`a file unlinked here while open in d (its hidden name in d), then A removes d${remake ? ' and makes d again' : ''}: fstat and reads through the descriptor work`, async () => {
      await withHub(async (h) => {
        const { a, b } = await twoMountsSharingDirD(h.hub);
        writeFileSync(join(a.mnt, 'd', 'f'), 'F'.repeat(100_000));
        assert.equal(syncWait(a).code, 0);
        await within(5000, 'B has d/f', () => assert.equal(statSync(join(b.mnt, 'd', 'f')).size, 100_000));
        const fd = openSync(join(b.mnt, 'd', 'f'), 'r');
        try {
          unlinkSync(join(b.mnt, 'd', 'f'));
          assert.equal(syncWait(b).code, 0);
          await within(5000, 'A sees d empty', () => assert.deepEqual(readdirSync(join(a.mnt, 'd')), []));
          rmdirSync(join(a.mnt, 'd'));
          if (remake) {
            mkdirSync(join(a.mnt, 'd'));
            writeFileSync(join(a.mnt, 'd', 'y'), 'y');
          }
          assert.equal(syncWait(a).code, 0);
          await sleep(1500);
          assert.equal(fstatSync(fd).size, 100_000, 'fstat: the kernel asks by the hidden name in d');
          const got = Buffer.alloc(10);
          assert.equal(readSync(fd, got, 0, 10, 60_000), 10);
          assert.equal(got.toString(), 'FFFFFFFFFF');
        } finally {
          closeSync(fd);
        }
        await within(5000, 'A and B agree', () => assert.deepEqual(show(b), show(a)));
        await stopCleanly(a);
        await stopCleanly(b);
      });
    });
  }
});
