import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { bridgeMount, syncWait, tree, withHub } from './bridge-helpers.js';
import { stopAll, stopCleanly, tempDir } from './harness.js';

after(stopAll);

/** Saves `dir/X` `rounds` times the way editors and git do: write a temporary file, rename it over. */
const SAVER = `
import os, sys, time
d, tag, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
for i in range(rounds):
    t = os.path.join(d, 'X.%s.tmp' % tag)
    with open(t, 'w') as f: f.write('%s %d\\n' % (tag, i))
    os.rename(t, os.path.join(d, 'X'))
    time.sleep(0.02)
`;

/**
 * Opens and reads `path` until `stop` exists; prints the opens and the ENOENTs. It keeps the last
 * file it opened open until the next open, as editors and tail do: a save then renames over an
 * open file, which libfuse hides first (FUSE.md).
 */
const WATCHER = `
import os, sys
p, stop = sys.argv[1], sys.argv[2]
n = miss = 0
held = None
while not os.path.exists(stop):
    n += 1
    try:
        f = open(p)
        f.read()
        if held: held.close()
        held = f
    except FileNotFoundError:
        miss += 1
print(n, miss)
`;

function run(script: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn('python3', ['-c', script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('exit', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`python3 exited ${code}: ${err.trim()}`))));
  });
}

describe('bridge mode: two mounts saving one name by rename at once', () => {
  it('neither mount ever shows the name missing, and both end with the same tree', async () => {
    await withHub(async ({ hub }) => {
      const a = await bridgeMount(hub);
      const b = await bridgeMount(hub);
      mkdirSync(join(a.mnt, 'as'));
      writeFileSync(join(a.mnt, 'as', 'X'), 'first\n');
      assert.equal(syncWait(a).code, 0);
      assert.equal(syncWait(b).code, 0);
      const stop = join(tempDir(), 'stop');
      const watchers = [run(WATCHER, [join(a.mnt, 'as', 'X'), stop]), run(WATCHER, [join(b.mnt, 'as', 'X'), stop])];
      try {
        await Promise.all([run(SAVER, [join(a.mnt, 'as'), 'A', '150']), run(SAVER, [join(b.mnt, 'as'), 'B', '150'])]);
      } finally {
        writeFileSync(stop, '');
      }
      const [wa, wb] = (await Promise.all(watchers)).map((w) => w.split(' ').map(Number));
      const [opensA = 0, missA] = wa ?? [];
      const [opensB = 0, missB] = wb ?? [];
      assert.ok(opensA > 100 && opensB > 100, `the watchers ran: ${opensA} / ${opensB} opens`);

      assert.deepEqual({ missA, missB }, { missA: 0, missB: 0 }, `opens of as/X that found no file (A: ${opensA} opens, B: ${opensB})`);
      assert.equal(syncWait(a).code, 0);
      assert.equal(syncWait(b).code, 0);
      assert.deepEqual(tree(b.mnt), tree(a.mnt));
      await stopCleanly(a);
      await stopCleanly(b);
    });
  });
});
