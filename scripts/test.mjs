// Runs every compiled test file of both workspaces with Node's test runner.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
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
const r = spawnSync(
  process.execPath,
  ['--test', '--test-concurrency=2', `--test-timeout=${TEST_TIMEOUT_MS}`, '--test-reporter=spec', ...files],
  { stdio: 'inherit', timeout: RUN_TIMEOUT_MS, killSignal: 'SIGKILL' },
);
if (r.error || r.signal) console.error(`test: the run did not finish: ${r.error?.message ?? `killed by ${r.signal}`} (limit ${RUN_TIMEOUT_MS / 60_000} min)`);
process.exit(r.status ?? 1);
