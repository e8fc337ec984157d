/**
 * An exploratory fuzzer, not part of the suite (its name does not end in .test.ts): two bridge
 * mounts run seeded random workloads on overlapping names, drains paused and resumed at random,
 * now and then a kill -9 and restart; at the end both must converge to the hub's tree and no
 * content a mount wrote last (per path) may be lost, unless a mount replaced or removed it as it
 * showed it. On 2026-12-06 it found convergence failures in 13 of 34 seeds; the view's alignment
 * with the replica once nothing is pending (BRIDGE.md) closed them (seeds 1-70 all converge since), and
 * a hang in rename(2) it found is fixed in the fuse-native patch (FUSE.md). Each seed prints what
 * the alignment repaired: cases the op-by-op mirroring of remote changes still gets wrong.
 *
 * Run: npm run build && node --test --test-reporter=spec packages/aether-remote/dist/test/mount/two-writer-fuzz.js
 * FUZZ_SEEDS=1,2,3 (default: one from the clock, AETHER_KILL_SEED replays), FUZZ_STEPS=N
 * (default 50-200 drawn from the seed), FUZZ_KILLS=0 turns the kill -9s off, FUZZ_TRACE=1 prints each
 * operation as it runs (to see where a hang is), FUZZ_RECLAIM=1 runs the hub with --chunk-grace 0
 * --feed-retain 3 (snapshots while mounted, chunks gone before a mount fetched them), FUZZ_FDS=1 adds
 * descriptors held open across steps (writes through them after either mount renamed, replaced or
 * removed their file; it changes every seed's sequence).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { appendFileSync, chmodSync, closeSync, fstatSync, linkSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { seededRandom } from '../seeded-random.js';
import { bridgeMount, sleep, syncWait, withHub } from './bridge-helpers.js';
import { killSeed, stopAll, stopCleanly, type MountProcess } from './harness.js';

after(stopAll);

const DIRS = ['', 'd0', 'd1', 'd0/e'];
const FILES = ['f0', 'f1', 'f2', 'f3'];
const FDS = process.env.FUZZ_FDS === '1';

function nlinkOf(fd: number): number {
  try {
    return fstatSync(fd).nlink;
  } catch {
    return 0;
  }
}

/** The whole content of the file `fd` is open on, read through it. */
function fdContent(fd: number): Buffer {
  const b = Buffer.alloc(fstatSync(fd).size);
  readSync(fd, b, 0, b.length, 0);
  return b;
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex').slice(0, 16);

interface Ev {
  t: number;
  who: string;
  kind: string;
  paths: string[];
  /** For paths holding content this mount just wrote/moved: path → content hash read back. */
  content?: Map<string, string>;
}

/** A descriptor held open across steps (FUZZ_FDS): `selfGone` once this mount's own op removed its last name. */
interface HeldFd {
  fd: number;
  path: string;
  selfGone: boolean;
}

interface Slot {
  name: string;
  m: MountProcess;
  paused: boolean;
  logs: string;
  fds: HeldFd[];
}

/** Closes every descriptor `s` holds (before a kill -9, or at the end): errors from a dead mount are expected. */
function closeHeld(s: Slot): void {
  for (const h of s.fds.splice(0)) {
    try {
      closeSync(h.fd);
    } catch {
      // the mount is gone
    }
  }
}

const INTERESTING = /resolution|skipped|does not apply|journal entry|conflict|error|Error|now follows it/;

function diffTrees(x: Map<string, string>, y: Map<string, string>, lx: string, ly: string): string {
  const out: string[] = [];
  for (const k of new Set([...x.keys(), ...y.keys()])) {
    if (x.get(k) !== y.get(k)) out.push(`${k}: ${lx}=${x.get(k) ?? '-'} ${ly}=${y.get(k) ?? '-'}`);
  }
  return out.sort().slice(0, 40).join('\n');
}

class Fuzz {
  readonly events: Ev[] = [];
  readonly linked = new Set<string>();
  /**
   * Content a mount replaced or removed as it showed it (an overwrite, an append, an unlink, a
   * rename over it, an rm -r): legitimately gone, even if its path's last writer was another mount
   * (its change reached this mount first, or a directory rename moved it here).
   */
  readonly superseded = new Set<string>();
  private t = 0;
  private n = 0;

  constructor(private readonly rnd: () => number) {}

  private pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.rnd() * xs.length)]!;
  }

  private path(): string {
    return join(this.pick(DIRS), this.pick(FILES));
  }

  private body(who: string): Buffer {
    const big = this.rnd() < 0.08;
    const len = big ? 65_536 + Math.floor(this.rnd() * 100_000) : 1 + Math.floor(this.rnd() * 200);
    const head = Buffer.from(`<${who}:${this.n++}>`);
    const b = Buffer.alloc(len);
    for (let i = 0; i < len; i++) b[i] = 97 + Math.floor(this.rnd() * 26);
    return Buffer.concat([head, b]);
  }

  private readBack(root: string, paths: string[]): Map<string, string> {
    const m = new Map<string, string>();
    for (const p of paths) {
      try {
        m.set(p, sha(readFileSync(join(root, p))));
      } catch {
        // gone meanwhile (the other mount's change applied): nothing expected
      }
    }
    return m;
  }

  /** Notes the content under `paths` (files, or whole directories) as replaced or removed by this mount. */
  private supersede(root: string, paths: string[]): void {
    const walk = (rel: string): void => {
      try {
        const st = lstatSync(join(root, rel));
        if (st.isDirectory()) for (const n of readdirSync(join(root, rel))) walk(join(rel, n));
        else this.superseded.add(sha(readFileSync(join(root, rel))));
      } catch {
        // not there (here): nothing replaced
      }
    };
    for (const p of paths) walk(p);
  }

  /**
   * Notes what an append landed on as replaced: another mount's change can reach this mount
   * between the read in supersede() and the write, and the append then extends that content
   * (seed 910: A read B's file before B's append arrived, appended after it; B's appended
   * content lived on inside A's and was reported lost).
   */
  private landedOn(root: string, p: string, body: Buffer): void {
    try {
      const now = readFileSync(join(root, p));
      if (now.length >= body.length && now.subarray(now.length - body.length).equals(body)) this.superseded.add(sha(now.subarray(0, now.length - body.length)));
    } catch {
      // gone meanwhile: nothing landed on
    }
  }

  /**
   * Unlinks `p` and notes what the unlink removed as replaced, read through a descriptor held
   * across it. Another mount's change can reach this mount between supersede()'s read and the
   * unlink, which then removes the version this mount showed by then (seed 81: this mount's edit
   * lost at the hub, the resolution showing the other mount's version in between; with 40 ms
   * between the read and the unlink it failed 4 runs in 5). Holding the file open makes libfuse
   * hide it instead of unlinking it, which Aether takes as the same unlink.
   */
  private unlinkHeld(root: string, p: string): void {
    let fd: number | undefined;
    try {
      fd = openSync(join(root, p), 'r');
    } catch {
      // not there or not readable: a plain unlink, nothing more to note
    }
    try {
      // Only what the unlink removed: the file held open must be the one the name had, and gone
      // after (another mount may rename it away and make a new one under the name meanwhile).
      const held = fd === undefined ? undefined : fstatSync(fd).ino;
      const named = lstatSync(join(root, p)).ino;
      rmSync(join(root, p));
      if (fd === undefined || held !== named || fstatSync(fd).nlink !== 0) return;
      try {
        this.superseded.add(sha(fdContent(fd)));
      } catch {
        // unreadable after the unlink (a chunk the hub reclaimed): nothing noted, as before
      }
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }

  /** One random operation on `s`; errors from the other mount's changes are expected. Returns a description. */
  step(s: Slot): string {
    if (FDS && this.rnd() < 0.15) return this.fdStep(s);
    const linked = s.fds.map((h) => nlinkOf(h.fd));
    try {
      return this.pathStep(s);
    } finally {
      // What this mount's own op unlinked loses its later writes, as on a local disk.
      s.fds.forEach((h, i) => {
        if ((linked[i] ?? 0) > 0 && nlinkOf(h.fd) === 0) h.selfGone = true;
      });
    }
  }

  /**
   * FUZZ_FDS: open a file and hold the descriptor, write through a held one (its file may since
   * have been renamed, replaced or removed by either mount), or close one. A write's content,
   * read back through the descriptor, must survive somewhere unless replaced as shown, or the
   * file was removed by this mount itself.
   */
  private fdStep(s: Slot): string {
    const root = s.m.mnt;
    const who = s.name;
    const t = ++this.t;
    const r = this.rnd();
    const p = this.path();
    let desc = '';
    try {
      if (s.fds.length === 0 || (s.fds.length < 3 && r < 0.3)) {
        desc = `open ${p}`;
        s.fds.push({ fd: openSync(join(root, p), 'r+'), path: p, selfGone: false });
      } else if (r < 0.85) {
        const h = this.pick(s.fds);
        desc = `fd-write ${h.path}${h.selfGone ? ' (unlinked here)' : ''}`;
        const before = fdContent(h.fd);
        writeSync(h.fd, `[${who}${this.n++}]`, Math.floor(this.rnd() * 10));
        const now = fdContent(h.fd);
        this.superseded.add(sha(before));
        // What reads back through the descriptor is its own file's content, also once another
        // file took the name it was opened by (seed 6013 read it back cut to the new file's size:
        // FUSE.md, hiding a node). Its inode number is not checked: fstat right after an open may
        // answer attributes the kernel cached for the name before another mount changed it (1 s).
        this.events.push({ t, who, kind: 'fd-write', paths: [h.path], ...(h.selfGone ? {} : { content: new Map([[h.path, sha(now)]]) }) });
      } else {
        const h = s.fds.splice(Math.floor(this.rnd() * s.fds.length), 1)[0]!;
        desc = `close ${h.path}`;
        closeSync(h.fd);
      }
      return `${who} ${desc}`;
    } catch (err) {
      return `${who} ${desc} -> ${(err as NodeJS.ErrnoException).code ?? String(err)}`;
    }
  }

  private pathStep(s: Slot): string {
    const root = s.m.mnt;
    const who = s.name;
    const r = this.rnd();
    const t = ++this.t;
    const p = this.path();
    let desc = '';
    try {
      if (r < 0.22) {
        desc = `write ${p}`;
        this.supersede(root, [p]);
        writeFileSync(join(root, p), this.body(who));
        this.events.push({ t, who, kind: 'write', paths: [p], content: this.readBack(root, [p]) });
      } else if (r < 0.37) {
        desc = `append ${p}`;
        this.supersede(root, [p]);
        const body = this.body(who);
        appendFileSync(join(root, p), body);
        this.landedOn(root, p, body);
        this.events.push({ t, who, kind: 'append', paths: [p], content: this.readBack(root, [p]) });
      } else if (r < 0.45) {
        desc = `pwrite ${p}`;
        this.supersede(root, [p]);
        const fd = openSync(join(root, p), 'r+');
        try {
          writeSync(fd, `[${who}${this.n++}]`, Math.floor(this.rnd() * 10));
        } finally {
          closeSync(fd);
        }
        this.events.push({ t, who, kind: 'pwrite', paths: [p], content: this.readBack(root, [p]) });
      } else if (r < 0.52) {
        const mode = this.pick([0o600, 0o640, 0o755]);
        desc = `chmod ${p} ${mode.toString(8)}`;
        chmodSync(join(root, p), mode);
        // A mode change is a touch, not content this mount wrote.
        this.events.push({ t, who, kind: 'chmod', paths: [p] });
      } else if (r < 0.65) {
        const q = this.path();
        desc = `rename ${p} ${q}`;
        if (p !== q) this.supersede(root, [q]);
        renameSync(join(root, p), join(root, q));
        this.events.push({ t, who, kind: 'rename', paths: [p, q], content: this.readBack(root, [q]) });
      } else if (r < 0.75) {
        desc = `unlink ${p}`;
        this.supersede(root, [p]);
        this.unlinkHeld(root, p);
        this.events.push({ t, who, kind: 'unlink', paths: [p] });
      } else if (r < 0.8) {
        const q = this.path();
        desc = `link ${p} ${q}`;
        linkSync(join(root, p), join(root, q));
        this.linked.add(p).add(q);
        this.events.push({ t, who, kind: 'link', paths: [p, q] });
      } else if (r < 0.9) {
        const d = this.pick(DIRS.slice(1));
        desc = `mkdir ${d}`;
        mkdirSync(join(root, d));
        this.events.push({ t, who, kind: 'mkdir', paths: [d] });
      } else if (r < 0.96) {
        const d = this.pick(DIRS.slice(1));
        desc = `rm -r ${d}`;
        this.supersede(root, [d]);
        this.events.push({ t, who, kind: 'rmdir', paths: [d] });
        rmSync(join(root, d), { recursive: true });
      } else {
        const d = this.pick(DIRS.slice(1));
        const e = this.pick(DIRS.slice(1));
        desc = `rename-dir ${d} ${e}`;
        // Both sides: everything under either is touched.
        this.events.push({ t, who, kind: 'rename-dir', paths: [d, e] });
        renameSync(join(root, d), join(root, e));
      }
      return `${who} ${desc}`;
    } catch (err) {
      // Even a failed directory op may have done part of its work (rm -r): keep its touch event.
      return `${who} ${desc} -> ${(err as NodeJS.ErrnoException).code ?? String(err)}`;
    }
  }

  /** Content each mount wrote last per path, when no other event touched the path (or an ancestor) afterwards. */
  expected(): { path: string; who: string; hash: string; t: number }[] {
    const touches = (ev: Ev, p: string): boolean => ev.paths.some((q) => q === p || p.startsWith(`${q}/`) || q.startsWith(`${p}/`));
    const paths = new Set(this.events.flatMap((e) => e.paths));
    const out: { path: string; who: string; hash: string; t: number }[] = [];
    for (const p of paths) {
      if (this.linked.has(p)) continue;
      const last = [...this.events].reverse().find((e) => touches(e, p));
      const h = last?.content?.get(p);
      if (last && h) out.push({ path: p, who: last.who, hash: h, t: last.t });
    }
    return out;
  }
}

async function settle(slots: Slot[]): Promise<string[]> {
  const notes: string[] = [];
  for (const s of slots) if (s.m.ctl(['sync', 'resume']).code !== 0) notes.push(`${s.name}: resume failed`);
  for (let round = 0; round < 6; round++) {
    let all = true;
    for (const s of slots) {
      const w = syncWait(s.m, 30);
      if (w.code !== 0) {
        all = false;
        notes.push(`${s.name}: sync wait round ${round}: ${w.err.trim().split('\n').slice(-1)[0]}`);
      }
    }
    await sleep(500);
    const again = slots.every((s) => syncWait(s.m, 5).code === 0);
    if (all && again) break;
  }
  await sleep(2000);
  return notes;
}

/**
 * tree(), but an entry that readdir lists and lstat cannot find shows as "unreachable" instead of
 * failing the walk (noted in `errs`, once per label): that itself is a finding.
 */
function safeTree(root: string, errs: string[], label: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string): void => {
    let names: string[];
    try {
      names = readdirSync(join(root, rel));
    } catch (err) {
      out.set(rel || '.', `unreadable dir ${(err as NodeJS.ErrnoException).code}`);
      return;
    }
    for (const name of names) {
      const p = rel ? `${rel}/${name}` : name;
      try {
        const st = lstatSync(join(root, p));
        if (st.isDirectory()) {
          out.set(p, `dir ${st.mode.toString(8)}`);
          walk(p);
        } else out.set(p, `file ${st.mode.toString(8)} ${sha(readFileSync(join(root, p)))}`);
      } catch (err) {
        out.set(p, `unreachable ${(err as NodeJS.ErrnoException).code}`);
        errs.push(`${label}: readdir lists ${p} but it fails: ${(err as NodeJS.ErrnoException).code}`);
      }
    }
  };
  walk('');
  return out;
}

const seeds = (process.env.FUZZ_SEEDS ?? String(killSeed())).split(',').map(Number);
/** FUZZ_RECLAIM=1: the hub drops unnamed chunks at once and keeps 3 entries, so mounts resync from snapshots. */
const hubArgs = process.env.FUZZ_RECLAIM ? ['--chunk-grace', '0', '--feed-retain', '3'] : [];

describe('bridge mode fuzz: two mounts changing overlapping names concurrently', () => {
  for (const seed of seeds) {
    it(`seed ${seed}: both mounts converge to the hub's tree and no last-written content is lost`, async () => {
      const rnd = seededRandom(seed);
      const steps = Number(process.env.FUZZ_STEPS ?? 50 + Math.floor(rnd() * 151));
      const kills = process.env.FUZZ_KILLS !== '0';
      process.stdout.write(`# fuzz2 seed ${seed} steps ${steps}\n`);
      await withHub(async (h) => {
        const slots: Slot[] = [
          { name: 'A', m: await bridgeMount(h.hub), paused: false, logs: '', fds: [] },
          { name: 'B', m: await bridgeMount(h.hub), paused: false, logs: '', fds: [] },
        ];
        const fuzz = new Fuzz(rnd);
        const trace: string[] = [];
        for (let i = 0; i < steps; i++) {
          const s = slots[rnd() < 0.5 ? 0 : 1]!;
          trace.push(fuzz.step(s));
          if (process.env.FUZZ_TRACE) process.stdout.write(`# ${trace.at(-1)}\n`);
          const r = rnd();
          if (r < 0.06) {
            const x = slots[rnd() < 0.5 ? 0 : 1]!;
            x.paused = !x.paused;
            assert.equal(x.m.ctl(['sync', x.paused ? 'pause' : 'resume']).code, 0);
            trace.push(`${x.name} ${x.paused ? 'pause' : 'resume'}`);
          } else if (kills && r < 0.075) {
            const x = slots[rnd() < 0.5 ? 0 : 1]!;
            x.logs += x.m.stderr();
            closeHeld(x);
            await x.m.kill9();
            x.m = await bridgeMount(h.hub, {}, { mnt: x.m.mnt, stateDir: x.m.stateDir });
            x.paused = false;
            trace.push(`${x.name} kill -9 + restart`);
          } else if (r < 0.2) {
            const ms = Math.floor(rnd() * 150);
            await sleep(ms);
            trace.push(`sleep ${ms}`);
          }
        }
        for (const s of slots) closeHeld(s);
        const notes = await settle(slots);
        const [a, b] = slots as [Slot, Slot];
        const problems: string[] = [];
        const walkErrs: string[] = [];
        const ta = safeTree(a.m.mnt, walkErrs, 'A');
        const tb = safeTree(b.m.mnt, walkErrs, 'B');
        const c = await bridgeMount(h.hub);
        // Give C time to catch up (its snapshot + feed).
        let tc = safeTree(c.mnt, [], 'C');
        for (let i = 0; i < 40 && diffTrees(tc, ta, 'C', 'A') !== ''; i++) {
          await sleep(250);
          tc = safeTree(c.mnt, [], 'C');
        }
        tc = safeTree(c.mnt, walkErrs, 'C');
        // A and B again: still changing after the settle is itself worth knowing.
        const ta2 = safeTree(a.m.mnt, walkErrs, 'A(again)');
        const tb2 = safeTree(b.m.mnt, walkErrs, 'B(again)');
        if (diffTrees(ta, ta2, 'A', 'A-later')) problems.push(`A still changing after the settle:\n${diffTrees(ta, ta2, 'A', 'A-later')}`);
        if (diffTrees(tb, tb2, 'B', 'B-later')) problems.push(`B still changing after the settle:\n${diffTrees(tb, tb2, 'B', 'B-later')}`);
        problems.push(...walkErrs);
        if (diffTrees(ta, tb, 'A', 'B')) problems.push(`A and B differ:\n${diffTrees(ta, tb, 'A', 'B')}`);
        if (diffTrees(ta, tc, 'A', 'hub(C)')) problems.push(`A and the hub (fresh mount C) differ:\n${diffTrees(ta, tc, 'A', 'hub(C)')}`);
        if (diffTrees(tb, tc, 'B', 'hub(C)')) problems.push(`B and the hub (fresh mount C) differ:\n${diffTrees(tb, tc, 'B', 'hub(C)')}`);
        for (const [t, name] of [
          [ta, 'A'],
          [tb, 'B'],
        ] as const) {
          const hashes = new Set([...t.values()].filter((v) => v.startsWith('file')).map((v) => v.split(' ')[2]));
          for (const e of fuzz.expected()) {
            if (!hashes.has(e.hash) && !fuzz.superseded.has(e.hash)) problems.push(`lost on ${name}: ${e.who}'s content ${e.hash} of ${e.path} (written at step-event ${e.t})`);
          }
        }
        if (problems.length > 0) {
          const logs = slots
            .map((s) => `--- ${s.name} log ---\n${(s.logs + s.m.stderr()).split('\n').filter((l) => INTERESTING.test(l)).slice(-60).join('\n')}`)
            .join('\n');
          const show = (t: Map<string, string>): string => [...t].map(([k, v]) => `${k} ${v}`).sort().join('\n');
          throw new Error(
            `seed ${seed} (steps ${steps}):\n${problems.join('\n')}\nsettle notes: ${notes.join('; ')}\n` +
              `hub data ${h.data}, A state ${a.m.stateDir}, B state ${b.m.stateDir}\n` +
              `--- trace ---\n${trace.join('\n')}\n--- A ---\n${show(ta)}\n--- B ---\n${show(tb)}\n--- C ---\n${show(tc)}\n${logs}`,
          );
        }
        // What the alignment with the hub's tree repaired (BRIDGE.md): the causes left to find.
        const repairs = slots.flatMap((s) => (s.logs + s.m.stderr()).split('\n').filter((l) => /now follows it|following the hub again|snapshot while mounted/.test(l)).map((l) => `${s.name}: ${l}`));
        process.stdout.write(`# seed ${seed}: ${ta.size} entries, converged${repairs.map((l) => `\n# ${l}`).join('')}\n`);
        await stopCleanly(c);
        for (const s of slots) await stopCleanly(s.m);
      }, hubArgs);
    });
  }
});
