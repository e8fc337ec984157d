/**
 * Local mode hands the attributes the kernel asks for right after a change (the parent directory,
 * a new name) to the patched binding, which answers those getattr requests without a round trip
 * to JS (fuse-binding.ts BindingAttrs, FUSE.md). These tests check that the answers are used and
 * that they are always current: every stat during a run of changes must equal what a fresh
 * mount, which has nothing cached anywhere, answers for the same tree.
 */
import assert from 'node:assert/strict';
import { appendFileSync, chmodSync, linkSync, mkdirSync, renameSync, rmdirSync, statSync, symlinkSync, truncateSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { startMount, stopAll, stopCleanly, type MountProcess } from './harness.js';
import { manifest } from './manifest.js';

async function metric(m: MountProcess, line: RegExp): Promise<number> {
  const address = (JSON.parse(m.ctl(['status', '--json']).out) as { metrics_address: string }).metrics_address;
  const text = await (await fetch(`http://${address}/metrics`)).text();
  const found = text.split('\n').find((l) => line.test(l));
  return found ? Number(found.split(' ').pop()) : 0;
}

const answers = (m: MountProcess) => metric(m, /^aether_fuse_binding_answers_total /);
const jsGetattrs = (m: MountProcess) => metric(m, /^aether_fuse_op_duration_seconds_count\{op="getattr"\}/);

/** Stats of `paths` as the running mount answers them: size, nlink, mode, times. */
function stats(mnt: string, paths: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of paths) {
    const s = statSync(join(mnt, p), { bigint: true });
    out[p] = `size=${s.size} nlink=${s.nlink} mode=${s.mode.toString(8)} mtime=${s.mtimeNs / 1_000_000n} ctime=${s.ctimeNs / 1_000_000n}`;
  }
  return out;
}

describe('local mode: attributes answered by the binding', () => {
  after(stopAll);

  it('rm -r and create ask JS for no directory attributes, and the answers equal a fresh mount\'s', async () => {
    const m = await startMount();
    const d = join(m.mnt, 'd');
    mkdirSync(d);
    for (let i = 0; i < 40; i++) writeFileSync(join(d, `f${i}`), 'x'.repeat(i));
    const jsBefore = await jsGetattrs(m);
    const answeredBefore = await answers(m);
    for (let i = 0; i < 20; i++) unlinkSync(join(d, `f${i}`));
    // Each unlink dropped d's attributes in the kernel; the permission check of the next one asked again.
    assert.ok((await answers(m)) - answeredBefore >= 19, 'the binding answered the directory getattr after each unlink');
    assert.ok((await jsGetattrs(m)) - jsBefore <= 2, 'JS saw (almost) no getattr during the unlinks');
    const seen = manifest(m.mnt);
    await stopCleanly(m);
    const fresh = await startMount({ mnt: m.mnt, stateDir: m.stateDir });
    assert.deepEqual(manifest(fresh.mnt), seen, 'what the mount answered during the changes is what a fresh mount answers');
    await fresh.stop();
  });

  it('every change keeps the answers current: directories, new names, hard links, renames, attribute changes', async () => {
    let m = await startMount();
    const at = (p: string) => join(m.mnt, p);
    const exists = (p: string) => {
      try {
        statSync(at(p));
        return true;
      } catch {
        return false;
      }
    };
    const watched = ['', 'a', 'a/sub', 'a/one', 'a/two', 'a/link', 'b', 'b/two'];
    const steps: [string, () => void][] = [
      ['mkdir a', () => mkdirSync(at('a'))],
      ['mkdir a/sub', () => mkdirSync(at('a/sub'))],
      ['create a/one', () => writeFileSync(at('a/one'), 'hello')],
      ['append a/one', () => appendFileSync(at('a/one'), ' world')],
      ['link a/one a/two', () => linkSync(at('a/one'), at('a/two'))],
      // A write through one name changes what every name of the inode answers.
      ['append through a/one', () => appendFileSync(at('a/one'), '!')],
      ['truncate through a/two', () => truncateSync(at('a/two'), 3)],
      ['chmod a/one', () => chmodSync(at('a/one'), 0o600)],
      ['chmod a', () => chmodSync(at('a'), 0o750)],
      ['utimes a/sub', () => utimesSync(at('a/sub'), 1_000_000, 2_000_000)],
      ['symlink a/link', () => symlinkSync('one', at('a/link'))],
      ['rename a/sub b', () => renameSync(at('a/sub'), at('b'))],
      ['rename a/two b/two', () => renameSync(at('a/two'), at('b/two'))],
      ['unlink a/one', () => unlinkSync(at('a/one'))],
      ['unlink b/two', () => unlinkSync(at('b/two'))],
      ['rmdir b', () => rmdirSync(at('b'))],
    ];
    let answered = 0;
    for (const [what, change] of steps) {
      change();
      // Stat right after the change: what the kernel asks for now is what the change handed over.
      const seen = stats(m.mnt, watched.filter(exists));
      answered += await answers(m);
      await stopCleanly(m);
      m = await startMount({ mnt: m.mnt, stateDir: m.stateDir });
      assert.deepEqual(stats(m.mnt, Object.keys(seen)), seen, `after ${what}: the answers equal a fresh mount's`);
    }
    assert.ok(answered > 0, 'the binding answered some of them');
    await m.stop();
  });
});
