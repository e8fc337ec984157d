import assert from 'node:assert/strict';
import { appendFileSync, chmodSync, closeSync, mkdirSync, openSync, readFileSync, renameSync, rmdirSync, statSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { CuttingProxy } from '../cutting-proxy.js';
import { scrape } from '../hub/helpers.js';
import { seededRandom } from '../seeded-random.js';
import { bridgeMount, bridgeStatus, mustSync, sleep, tree, within, withHub } from './bridge-helpers.js';
import { killSeed, stopAll, stopCleanly, type MountProcess } from './harness.js';

after(stopAll);

/** Bytes drawn from `rnd`: incompressible enough, and the same for a seed. */
function bytes(rnd: () => number, size: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i + 4 <= size; i += 4) b.writeUInt32LE(Math.floor(rnd() * 2 ** 32), i);
  return b;
}

/** Sizes below one 64 KiB chunk and across several. */
const size = (rnd: () => number): number => (rnd() < 0.5 ? 1 + Math.floor(rnd() * 4000) : 65_536 + Math.floor(rnd() * 250_000));

/**
 * A random workload on a mount, with the model of what the tree must hold: creates (small and
 * multi-chunk), appends, overwrites, chmods, renames, deletes, directories.
 */
class Workload {
  readonly files = new Map<string, { data: Buffer; mode?: number }>();
  private readonly dirs = [''];
  private n = 0;

  constructor(
    private readonly root: string,
    private readonly rnd: () => number,
  ) {}

  private pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.rnd() * xs.length)]!;
  }

  step(): void {
    const r = this.rnd();
    const names = [...this.files.keys()];
    if (names.length < 3 || r < 0.3) {
      const name = join(this.pick(this.dirs), `f${this.n++}.bin`);
      const data = bytes(this.rnd, size(this.rnd));
      writeFileSync(join(this.root, name), data);
      this.files.set(name, { data });
    } else if (r < 0.5) {
      const name = this.pick(names);
      const more = bytes(this.rnd, size(this.rnd));
      appendFileSync(join(this.root, name), more);
      const f = this.files.get(name)!;
      f.data = Buffer.concat([f.data, more]);
    } else if (r < 0.65) {
      const name = this.pick(names);
      const data = bytes(this.rnd, size(this.rnd));
      writeFileSync(join(this.root, name), data);
      this.files.get(name)!.data = data;
    } else if (r < 0.75) {
      const name = this.pick(names);
      const mode = this.pick([0o600, 0o640, 0o755]);
      chmodSync(join(this.root, name), mode);
      this.files.get(name)!.mode = mode;
    } else if (r < 0.85) {
      const name = this.pick(names);
      const to = join(this.pick(this.dirs), `r${this.n++}.bin`);
      renameSync(join(this.root, name), join(this.root, to));
      this.files.set(to, this.files.get(name)!);
      this.files.delete(name);
    } else if (r < 0.92) {
      const name = this.pick(names);
      unlinkSync(join(this.root, name));
      this.files.delete(name);
    } else {
      const dir = `d${this.n++}`;
      mkdirSync(join(this.root, dir));
      this.dirs.push(dir);
    }
  }

  /** The mount holds exactly the model: every file once, with its content (appends once) and mode. */
  check(): void {
    const t = tree(this.root);
    const files = [...t].filter(([, v]) => v.startsWith('file')).map(([k]) => k);
    assert.deepEqual(files.sort(), [...this.files.keys()].sort(), 'no file missing, none extra');
    for (const [name, f] of this.files) {
      assert.ok(readFileSync(join(this.root, name)).equals(f.data), `${name}: content`);
      if (f.mode !== undefined) assert.equal(statSync(join(this.root, name)).mode & 0o7777, f.mode, `${name}: mode`);
    }
    assert.deepEqual([...t].filter(([, v]) => v.startsWith('dir')).map(([k]) => k).sort(), this.dirs.filter((d) => d !== '').sort());
  }
}

describe('bridge mode: a proxy cutting connections between mount A and the hub', () => {
  it('after it stops: sync wait succeeds, A and B are identical, nothing applied twice', async () => {
    const seed = killSeed();
    process.stdout.write(`# cutting proxy seed ${seed} (AETHER_KILL_SEED=${seed} replays it)\n`);
    const rnd = seededRandom(seed);
    await withHub(async (h) => {
      // Connections live 20-250 ms: long enough for some batches to commit, short enough that
      // uploads, acks and the changefeed are cut at every stage.
      const proxy = new CuttingProxy(Number(h.hub.url.split(':').pop()), seededRandom(seed + 1), { minMs: 20, maxMs: 250 });
      proxy.cutting = false;
      const a = await bridgeMount(`ws://127.0.0.1:${await proxy.listen()}`);
      const b = await bridgeMount(h.hub);
      try {
        proxy.cutting = true;
        const work = new Workload(a.mnt, rnd);
        for (let i = 0; i < 200; i++) {
          work.step();
          if (rnd() < 0.2) await sleep(Math.floor(rnd() * 100));
        }
        await sleep(1000);
        proxy.cutting = false;
        assert.ok(proxy.cuts >= 3, `the proxy cut only ${proxy.cuts} connections`);
        await mustSync(a, 60);
        try {
          work.check();
        } catch (err) {
          throw new Error(`${err instanceof Error ? err.message : String(err)}\nA's log:\n${a.stderr().slice(-4000)}`);
        }
        await within(15_000, 'B holds what A holds', () => assert.deepEqual(tree(b.mnt), tree(a.mnt)));

        // The hub applied every journal entry of A once: entries in order, no op's sequence in two of them.
        const mountId = bridgeStatus(a).mount_id as string;
        const db = new Database(join(h.data, 'meta.sqlite'), { readonly: true });
        const feed = db.prepare('SELECT journal_seq, entry FROM hub_feed WHERE mount_id = ? ORDER BY hub_seq').all(mountId) as { journal_seq: number; entry: string }[];
        db.close();
        assert.ok(feed.length > 0);
        let prev = 0;
        for (const row of feed) {
          assert.ok(row.journal_seq > prev, `feed entries of A out of order or repeated: ${row.journal_seq} after ${prev}`);
          const ops = (JSON.parse(row.entry) as { ops: { jseq: number }[] }).ops;
          for (const o of ops) assert.ok(o.jseq > prev && o.jseq <= row.journal_seq, `journal entry ${o.jseq} of A applied outside its batch (${prev}, ${row.journal_seq}]`);
          prev = row.journal_seq;
        }
        const dups = await scrape(h.hub.metricsUrl, 'aether_hub_duplicate_batches_total');
        process.stdout.write(`# proxy: ${proxy.cuts} cuts, ${feed.length} batches of A committed, ${dups} re-sent batches acknowledged as duplicates\n`);
      } finally {
        await proxy.close();
      }
      await stopCleanly(a);
      await stopCleanly(b);
    });
  });
});

describe('bridge mode: an ack lost after the hub committed the batch', () => {
  for (const behind of [false, true]) {
    it(`${behind ? 'the mount back behind the retained feed (a snapshot), its own entry with the resolutions gone' : 'the resolutions reach the mount from its own changefeed entry'}: a file edited on here goes on from its conflict copy, nothing of it lost`, async () => {
      await withHub(async (h) => {
        const proxy = new CuttingProxy(Number(h.hub.url.split(':').pop()), seededRandom(1));
        proxy.cutting = false;
        const a = await bridgeMount(`ws://127.0.0.1:${await proxy.listen()}`);
        const b = await bridgeMount(h.hub);
        const x = (m: MountProcess) => join(m.mnt, 'x');
        const overwrite = (path: string, at: number, text: string): void => {
          const fd = openSync(path, 'r+');
          writeSync(fd, text, at);
          closeSync(fd);
        };
        try {
          const base = 'base-0123456789-base-0123456789\n';
          writeFileSync(x(a), base);
          await mustSync(a);
          await within(5000, 'x reaches B', () => assert.equal(readFileSync(x(b), 'utf8'), base));
          // A edits x unshipped while B's edit of it commits first and reaches A: A's batch will be
          // a conflict, its version kept in a copy that A's later edits go to.
          assert.equal(a.ctl(['sync', 'pause']).code, 0);
          overwrite(x(a), 0, 'AAAA');
          writeFileSync(x(b), 'B wrote all of x\n');
          await mustSync(b);
          await sleep(1000);
          proxy.cutAt('"t":"ack"', true);
          assert.equal(a.ctl(['sync', 'resume']).code, 0);
          await within(10_000, 'the ack of A\'s batch was cut', () => assert.equal(proxy.cuts, 1));
          proxy.down();
          // The upload in flight goes on after the reconnect; the drain takes nothing after it.
          assert.equal(a.ctl(['sync', 'pause']).code, 0);
          const first = (JSON.parse(a.ctl(['status', '--json']).out) as { journal: { last_seq: number } }).journal.last_seq;
          overwrite(x(a), 10, 'CC');
          // More commits than the hub retains: A's own entry, with the resolutions, is gone from the feed.
          if (behind) {
            for (let i = 0; i < 5; i++) {
              writeFileSync(join(b.mnt, `n${i}`), `${i}`);
              await mustSync(b);
            }
          }
          proxy.up();
          await within(15_000, 'A\'s first batch is acknowledged again (a duplicate)', () => {
            assert.ok((JSON.parse(a.ctl(['status', '--json']).out) as { journal: { committed_seq: number } }).journal.committed_seq >= first);
          });
          // The log line may still be on its way through the pipe.
          if (behind) await within(5000, 'A came back behind the retained feed', () => assert.match(a.stderr(), /a snapshot while mounted/));
          // The first edit's bytes are clean now: gone from the cache, they come from the base.
          assert.equal(a.ctl(['cache', 'clear']).code, 0);
          const mine = `AAAA${base.slice(4, 10)}CC${base.slice(12)}`;
          assert.equal(readFileSync(x(a), 'utf8'), mine, 'A shows both of its edits');
          assert.equal(a.ctl(['sync', 'resume']).code, 0);
          await mustSync(a);
          await within(10_000, 'A and B agree: B\'s x, and A\'s version whole in a copy', () => {
            const t = tree(a.mnt);
            assert.deepEqual(tree(b.mnt), t);
            const names = [...t.keys()].filter((n) => !/^n\d$/.test(n)).sort();
            assert.equal(names.length, 2, names.join(', '));
            assert.equal(readFileSync(x(b), 'utf8'), 'B wrote all of x\n');
            assert.equal(readFileSync(join(b.mnt, names.find((n) => n.startsWith('x.conflict-'))!), 'utf8'), mine);
          });
        } finally {
          await proxy.close();
        }
        await stopCleanly(a);
        await stopCleanly(b);
      }, behind ? ['--feed-retain', '3'] : []);
    });
  }
  it('a file another mount deleted, open here with an edit: the ack lost and the mount back behind the retained feed, the descriptor goes on from the copy', async () => {
    await withHub(
      async (h) => {
        const proxy = new CuttingProxy(Number(h.hub.url.split(':').pop()), seededRandom(3));
        proxy.cutting = false;
        // No cache: reads of what is not dirty come from the kept version, or the replica.
        const a = await bridgeMount(`ws://127.0.0.1:${await proxy.listen()}`, { AFS_AETHER_CACHE_MAX_BYTES: '0' });
        const b = await bridgeMount(h.hub);
        try {
          writeFileSync(join(b.mnt, 'o'), 'original content 20b');
          await mustSync(b);
          await within(5000, 'A has o', () => assert.equal(statSync(join(a.mnt, 'o')).size, 20));
          const fd = openSync(join(a.mnt, 'o'), 'r+');
          try {
            assert.equal(a.ctl(['sync', 'pause']).code, 0);
            writeSync(fd, 'X', 0);
            unlinkSync(join(b.mnt, 'o'));
            await mustSync(b);
            await sleep(1000);
            proxy.cutAt('"t":"ack"', true);
            assert.equal(a.ctl(['sync', 'resume']).code, 0);
            await within(10_000, 'the ack of A\'s batch was cut', () => assert.equal(proxy.cuts, 1));
            for (let i = 0; i < 5; i++) {
              writeFileSync(join(b.mnt, `n${i}`), `${i}`);
              await mustSync(b);
            }
            proxy.up();
            await mustSync(a);
            await within(5000, 'A came back behind the retained feed', () => assert.match(a.stderr(), /a snapshot while mounted/));
            // The first write's bytes are clean now: gone from the cache, they come from the base.
            assert.equal(a.ctl(['cache', 'clear']).code, 0);
            writeSync(fd, 'Y', 1);
            await mustSync(a);
          } finally {
            closeSync(fd);
          }
          await within(10_000, 'A and B agree: the copy holds both of A\'s writes', () => {
            const t = tree(a.mnt);
            assert.deepEqual(tree(b.mnt), t);
            const copies = [...t.keys()].filter((n) => n.startsWith('o.conflict-'));
            assert.deepEqual(
              copies.map((n) => readFileSync(join(b.mnt, n), 'latin1')),
              ['XYiginal content 20b'],
            );
          });
        } finally {
          await proxy.close();
        }
        await stopCleanly(a);
        await stopCleanly(b);
      },
      ['--feed-retain', '3'],
    );
  });
  it('a file of this mount that won a name its new file wanted, appended to before the resolution came: the append ships', async () => {
    await withHub(async (h) => {
      const proxy = new CuttingProxy(Number(h.hub.url.split(':').pop()), seededRandom(2));
      proxy.cutting = false;
      const b = await bridgeMount(`ws://127.0.0.1:${await proxy.listen()}`);
      const a = await bridgeMount(h.hub);
      try {
        writeFileSync(join(b.mnt, 'f1'), 'one\n');
        mkdirSync(join(b.mnt, 'd'));
        await mustSync(b);
        await within(5000, 'd reaches A', () => assert.ok(statSync(join(a.mnt, 'd')).isDirectory()));
        // B makes d/f1 unshipped while A removes d: the hub puts B's new file in the root, where
        // the name f1 is B's own file, so it gets a conflict name (wanted: f1, winner: B's f1).
        assert.equal(b.ctl(['sync', 'pause']).code, 0);
        writeFileSync(join(b.mnt, 'd', 'f1'), 'new in d\n');
        rmdirSync(join(a.mnt, 'd'));
        await mustSync(a);
        await sleep(1000);
        proxy.cutAt('"t":"ack"');
        assert.equal(b.ctl(['sync', 'resume']).code, 0);
        await within(10_000, 'the ack of B\'s batch was cut', () => assert.equal(proxy.cuts, 1));
        proxy.down();
        appendFileSync(join(b.mnt, 'f1'), 'two\n');
        proxy.up();
        await mustSync(b);
        await within(10_000, 'both show f1 with the append, and the new file under a conflict name', () => {
          for (const m of [a, b]) {
            assert.equal(readFileSync(join(m.mnt, 'f1'), 'utf8'), 'one\ntwo\n');
            const copies = [...tree(m.mnt).keys()].filter((n) => n.startsWith('f1.conflict-'));
            assert.deepEqual(copies.map((n) => readFileSync(join(m.mnt, n), 'utf8')), ['new in d\n']);
          }
        });
      } finally {
        await proxy.close();
      }
      await stopCleanly(a);
      await stopCleanly(b);
    });
  });
});
