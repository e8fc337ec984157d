// Runs every compiled test file of both workspaces with Node's test runner.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function find(dir, out = []) {
  let names;
  try {
    names = readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of names) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) find(p, out);
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

const only = process.argv.slice(2);
const files = ['packages/aether/dist/test', 'packages/aether-remote/dist/test']
  .flatMap((d) => find(d))
  .filter((f) => only.length === 0 || only.some((o) => f.includes(o)))
  .sort();
if (files.length === 0) {
  console.error('test: no test files found (did the build run?)');
  process.exit(1);
}
// A test that hangs fails after TEST_TIMEOUT_MS instead of holding the run (the slowest, a kill -9
// suite, takes about a minute here), and the whole run stops after RUN_TIMEOUT_MS, well inside CI's
// 90 minutes, saying so. No --test-force-exit: its process.exit() can deadlock Node 20 at exit (a
// concurrent TurboFan job waits for a garbage collection the exiting main thread never runs,
// nodejs/node#54918; about one run in a hundred of a short test file here), so every test file
// must close what it opens and end by itself.
const TEST_TIMEOUT_MS = 10 * 60_000;
const RUN_TIMEOUT_MS = 60 * 60_000;
// Everything the tests put in the temporary directory (state directories, mount points, sockets)
// goes under one directory of this run, removed at the end whatever happened: a run used to leave
// ~110 MB of directories in /tmp. Mounts a failed test left there are lazily unmounted first, so
// that removing the directory never deletes through a live file system.
const runTmp = mkdtempSync(join(tmpdir(), 'aether-test-run-'));
// As /tmp itself: tests that act as another user (nobody, through --allow-other) must reach it.
chmodSync(runTmp, 0o1777);
// Ctrl-C reaches the test runner too; this process waits for it to end, then cleans up.
process.on('SIGINT', () => undefined);
let r;
try {
  r = spawnSync(
    process.execPath,
    ['--test', '--test-concurrency=2', `--test-timeout=${TEST_TIMEOUT_MS}`, '--test-reporter=spec', ...files],
    { stdio: 'inherit', timeout: RUN_TIMEOUT_MS, killSignal: 'SIGKILL', env: { ...process.env, TMPDIR: runTmp } },
  );
} finally {
  removeRunTmp(runTmp);
}
if (r.error || r.signal) console.error(`test: the run did not finish: ${r.error?.message ?? `killed by ${r.signal}`} (limit ${RUN_TIMEOUT_MS / 60_000} min)`);
process.exit(r.status ?? 1);

function mountsUnder(dir) {
  return readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((line) => (line.split(' ')[1] ?? '').replace(/\\040/g, ' '))
    .filter((m) => m.startsWith(dir + '/'))
    .sort((a, b) => b.length - a.length);
}

function removeRunTmp(dir) {
  for (const m of mountsUnder(dir)) {
    if (spawnSync('fusermount3', ['-u', '-z', m]).status !== 0) spawnSync('umount', ['-l', m]);
  }
  const left = mountsUnder(dir);
  if (left.length > 0) {
    console.error(`test: ${dir} kept: still mounted there: ${left.join(', ')}`);
    return;
  }
  try {
    rmSync(dir, { recursive: true, force: true });
  } catch (err) {
    console.error(`test: could not remove ${dir}: ${err.message}`);
  }
}
