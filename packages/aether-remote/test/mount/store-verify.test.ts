/**
 * `aether store verify`: every chunk of a mount's store checked against its SHA-256, a damaged
 * one named with the files it belongs to. The store is a real mount's, written through FUSE.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, cpSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { verifyStore } from '@aether/core/store/verify';
import { bridgeMount, syncWait, within, withHub } from './bridge-helpers.js';
import { bin, startMount, stopAll, stopCleanly, waitDrained } from './harness.js';

after(stopAll);

function aether(args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { env: { PATH: process.env.PATH ?? '' }, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** The store's chunk of `path`'s first block: its pack file and where in it. */
function chunkOf(store: string, ino: number): { pack: string; offset: number; length: number } {
  const db = new Database(join(store, 'meta.sqlite'), { readonly: true });
  try {
    const row = db.prepare('SELECT c.pack AS pack, c.offset AS offset, c.length AS length FROM blocks b JOIN chunks c ON c.hash = b.hash WHERE b.ino = ? AND b.idx = 0').get(ino) as { pack: number; offset: number; length: number };
    return { pack: join(store, 'packs', `${row.pack}.pack`), offset: row.offset, length: row.length };
  } finally {
    db.close();
  }
}

function flipByte(path: string, at: number): void {
  const fd = openSync(path, 'r+');
  const b = Buffer.alloc(1);
  readSync(fd, b, 0, 1, at);
  writeSync(fd, Buffer.from([b[0]! ^ 0x20]), 0, 1, at);
  closeSync(fd);
}

describe('aether store verify', () => {
  it('a store written through a mount is intact (also while the mount runs); a flipped byte and a missing pack are named with their files; exit 1', async () => {
    const m = await startMount();
    mkdirSync(join(m.mnt, 'docs'));
    writeFileSync(join(m.mnt, 'docs', 'report.txt'), 'quarterly figures\n'.repeat(100));
    writeFileSync(join(m.mnt, 'big.bin'), randomBytes(3 * 1024 * 1024 + 5));
    writeFileSync(join(m.mnt, 'gone.bin'), randomBytes(100_000));
    const inoOf = (name: string): number => Number(spawnSync('stat', ['-c', '%i', join(m.mnt, name)], { encoding: 'utf8' }).stdout.trim());
    const ino = inoOf('docs/report.txt');
    const goneIno = inoOf('gone.bin');
    await waitDrained(m);
    // A file removed after its contents reached the store: its chunk stays until the next reclaim (a minute after the last).
    const goneChunk = chunkOf(join(m.stateDir, 'store'), goneIno);
    unlinkSync(join(m.mnt, 'gone.bin'));
    await waitDrained(m);
    const live = m.ctl(['store', 'verify', '--state-dir', m.stateDir]);
    assert.equal(live.code, 0, live.out + live.err);
    assert.match(live.out, /^aether: store .*\/store: \d+ chunks \(\d+\.\d MiB\) checked, all intact\n$/);
    await stopCleanly(m);

    const store = join(m.stateDir, 'store');
    const json = aether(['store', 'verify', '--state-dir', m.stateDir, '--json']);
    assert.equal(json.code, 0, json.err);
    const clean = JSON.parse(json.out) as { chunks: number; bytes: number; damaged: unknown[] };
    assert.ok(clean.chunks >= 2 && clean.bytes >= 3 * 1024 * 1024, json.out);
    assert.deepEqual(clean.damaged, []);

    // A byte flipped in the removed file's chunk: no file is damaged, exit 0.
    flipByte(goneChunk.pack, goneChunk.offset + 10);
    const unused = aether(['store', 'verify', '--state-dir', m.stateDir]);
    assert.equal(unused.code, 0, unused.out + unused.err);
    assert.match(unused.out, /checked, no file damaged \(1 damaged chunk no file uses any more: nothing lost, reclaim drops them\)\n$/);

    // One byte of report.txt's chunk flipped on the disk.
    const c = chunkOf(store, ino);
    flipByte(c.pack, c.offset + 3);
    const flipped = aether(['store', 'verify', '--state-dir', m.stateDir]);
    assert.equal(flipped.code, 1, flipped.out + flipped.err);
    assert.match(flipped.out, new RegExp(`^aether: store .*: 1 of ${clean.chunks} chunks damaged \\(1 damaged chunk no file uses any more: nothing lost, reclaim drops them\\)\\n  chunk [0-9a-f]{64} \\(${c.length} bytes at ${c.offset} in ${c.pack.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\): content differs; in /docs/report\\.txt\\n$`));

    // The pack gone altogether: every chunk in it is named, with big.bin among the files.
    renameSync(c.pack, `${c.pack}.moved`);
    const gone = aether(['store', 'verify', '--state-dir', m.stateDir, '--json']);
    assert.equal(gone.code, 1);
    const report = JSON.parse(gone.out) as { damaged: { problem: string; files: string[] }[] };
    assert.ok(report.damaged.length >= 2);
    assert.ok(report.damaged.every((d) => d.problem === 'pack missing'));
    assert.deepEqual([...new Set(report.damaged.flatMap((d) => d.files))].sort(), ['/big.bin', '/docs/report.txt']);
  });

  it('a mount on a store that lost a pack says so at the start, and data written again is stored again: the new file and the old one read it', async () => {
    const data = randomBytes(300_000);
    const m = await startMount();
    writeFileSync(join(m.mnt, 'old.bin'), data);
    await waitDrained(m);
    await stopCleanly(m);
    const packs = join(m.stateDir, 'store', 'packs');
    for (const name of readdirSync(packs)) unlinkSync(join(packs, name));
    const again = await startMount({ stateDir: m.stateDir });
    assert.match(again.stderr(), /store: 1 pack file\(s\) are missing or cut short \(\S+\.pack missing\): files with data there read EIO/);
    // Deduplicated against the lost chunks, this write was lost once drained (a review).
    writeFileSync(join(again.mnt, 'new.bin'), data);
    await waitDrained(again);
    await within(5000, 'the log says', () => assert.match(again.stderr(), /the store's copy of 5 chunk\(s\) was damaged or missing on disk/));
    assert.ok(readFileSync(join(again.mnt, 'new.bin')).equals(data));
    assert.ok(readFileSync(join(again.mnt, 'old.bin')).equals(data));
    await stopCleanly(again);
    const verify = aether(['store', 'verify', '--state-dir', m.stateDir]);
    assert.equal(verify.code, 0, verify.out + verify.err);
  });

  it('a damaged database is named: pages zeroed on disk, and a write-ahead log lost after a kill -9; exit 1', async () => {
    const m = await startMount();
    for (let i = 0; i < 300; i++) writeFileSync(join(m.mnt, `f${i}`), randomBytes(4096));
    await waitDrained(m);
    await stopCleanly(m);
    const copy = join(m.stateDir, '..', 'zeroed');
    cpSync(m.stateDir, copy, { recursive: true });
    // A page of the file table zeroed, which the chunk listing never reads: it passed for a sound
    // store whose files read EIO (a review).
    const file = join(copy, 'store', 'meta.sqlite');
    const meta = new Database(file, { readonly: true });
    const pageSize = meta.pragma('page_size', { simple: true }) as number;
    const root = (meta.prepare("SELECT rootpage FROM sqlite_master WHERE name = 'dentries'").get() as { rootpage: number }).rootpage;
    meta.close();
    const fd = openSync(file, 'r+');
    writeSync(fd, Buffer.alloc(pageSize), 0, pageSize, (root - 1) * pageSize);
    closeSync(fd);
    const zeroed = aether(['store', 'verify', '--state-dir', copy]);
    assert.equal(zeroed.code, 1, zeroed.out + zeroed.err);
    assert.match(zeroed.out, /^aether: store .*: its database is damaged: /);
    // What a drain commits stays in the write-ahead log until a checkpoint: without it the database is sound, and behind the journal.
    const again = await startMount({ stateDir: m.stateDir });
    writeFileSync(join(again.mnt, 'later'), 'later');
    await waitDrained(again);
    await again.kill9();
    unlinkSync(join(m.stateDir, 'store', 'meta.sqlite-wal'));
    const behind = aether(['store', 'verify', '--state-dir', m.stateDir]);
    assert.equal(behind.code, 1, behind.out + behind.err);
    assert.match(behind.out, /^aether: store .*: its database is damaged: it holds journal entries up to (\d+), but entries up to (?!\1)\d+ were committed to it/);
  });

  it('reads the chunk index a page at a time: a running store can checkpoint its log meanwhile; damage in a later page is found', async () => {
    const m = await startMount();
    for (let i = 0; i < 40; i++) writeFileSync(join(m.mnt, `f${i}`), `file ${i}\n`.repeat(50 + i));
    const ino = Number(spawnSync('stat', ['-c', '%i', join(m.mnt, 'f37')], { encoding: 'utf8' }).stdout.trim());
    await waitDrained(m);
    await stopCleanly(m);
    const store = join(m.stateDir, 'store');
    const c = chunkOf(store, ino);
    flipByte(c.pack, c.offset + 3);
    const writer = new Database(join(store, 'meta.sqlite'), { timeout: 0 });
    try {
      const chunks = (writer.prepare('SELECT count(*) AS n FROM chunks').get() as { n: number }).n;
      // Another writer of the store while the check runs: a read held across the run would keep
      // each checkpoint from emptying the log (busy).
      let done = false;
      const run = verifyStore(store, { page: 4 }).finally(() => (done = true));
      const busy: number[] = [];
      for (let i = 0; !done; i++) {
        writer.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('verify_test', ?)").run(i);
        busy.push((writer.pragma('wal_checkpoint(TRUNCATE)') as Array<{ busy: number }>)[0]!.busy);
        await new Promise((r) => setImmediate(r));
      }
      const report = await run;
      assert.equal(report.chunks, chunks);
      assert.ok(chunks >= 40, `${chunks} chunks`);
      assert.deepEqual(report.damaged.map((d) => [d.files, d.problem]), [[['/f37'], 'content differs']]);
      assert.ok(busy.length >= 10, `${busy.length} checkpoints during the check`);
      assert.deepEqual(busy.filter((b) => b !== 0), []);
    } finally {
      writer.close();
    }
  });

  it("a hub's data directory (--data), while the hub runs; a bridge mount's state directory checks its replica", async () => {
    await withHub(async ({ hub, data }) => {
      const m = await bridgeMount(hub);
      writeFileSync(join(m.mnt, 'shared.bin'), randomBytes(200_000));
      assert.equal(syncWait(m).code, 0);
      const r = aether(['store', 'verify', '--data', data, '--json']);
      assert.equal(r.code, 0, r.err);
      const report = JSON.parse(r.out) as { chunks: number; bytes: number; damaged: unknown[] };
      assert.ok(report.chunks >= 1 && report.bytes >= 200_000, r.out);
      assert.deepEqual(report.damaged, []);
      // It said "no store at <state>/store" (a bridge mount keeps none): its replica of the hub.
      const mine = aether(['store', 'verify', '--state-dir', m.stateDir]);
      assert.equal(mine.code, 0, mine.err);
      assert.match(mine.out, /^aether: store .*\/replica: \d+ chunks \(\d+\.\d MiB\) checked, all intact\n$/);
      await stopCleanly(m);
    });
  });

  it('bad input is one line and exit code 2', () => {
    for (const args of [['--state-dir', '/nonexistent/aether-state'], ['--data', '/tmp', '--state-dir', '/tmp'], ['--data', '/nonexistent/hub-data']]) {
      const r = aether(['store', 'verify', ...args]);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
      assert.equal(r.err.trim().split('\n').length, 1, r.err);
      assert.match(r.err, /^aether: /);
    }
  });
});
