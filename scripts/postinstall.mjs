// Root postinstall: applies patches/ with patch-package, then rebuilds fuse-native from its patched
// C source with node-gyp, and checks that the addon Node loads is that build. Why the patch exists:
// packages/aether/src/mount/FUSE.md. Any failure fails the install: an unpatched binding corrupts
// timestamps silently, which is worse than no install.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const PATCH_MARKER = 'aether patch';

function run(what, args, cwd) {
  const r = spawnSync(process.execPath, args, { cwd, stdio: 'inherit' });
  if (r.status !== 0) fail(`${what} failed (exit ${r.status ?? r.signal})`);
}

function fail(message) {
  console.error(`postinstall: ${message}`);
  process.exit(1);
}

function binOf(pkg, name) {
  const manifest = require.resolve(`${pkg}/package.json`);
  const { bin } = JSON.parse(readFileSync(manifest, 'utf8'));
  return join(dirname(manifest), typeof bin === 'string' ? bin : bin[name]);
}

/** node-gyp downloads headers unless told where they are; offline, that fails. */
function nodedirArgs() {
  if (process.env.npm_config_nodedir) return [];
  const prefix = join(dirname(process.execPath), '..');
  return existsSync(join(prefix, 'include', 'node', 'node_api.h')) ? [`--nodedir=${prefix}`] : [];
}

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
run('patch-package', [binOf('patch-package', 'patch-package'), '--error-on-fail'], root);

const fuseDir = dirname(require.resolve('fuse-native/package.json'));
if (!readFileSync(join(fuseDir, 'fuse-native.c'), 'utf8').includes(PATCH_MARKER)) {
  fail(`${fuseDir}/fuse-native.c is not patched (patches/fuse-native+*.patch did not apply)`);
}
run('node-gyp rebuild of fuse-native', [binOf('node-gyp', 'node-gyp'), 'rebuild', ...nodedirArgs()], fuseDir);

// node-gyp-build falls back to the unpatched prebuilds/ when build/Release is missing: make sure
// the process really maps the fresh build.
const expected = join(fuseDir, 'build', 'Release', 'fuse.node');
const probe = spawnSync(process.execPath, ['-e', `
  require(${JSON.stringify(fuseDir)});
  const line = require('fs').readFileSync('/proc/self/maps', 'utf8').split('\\n').find((l) => l.endsWith('.node') && l.includes('fuse'));
  process.stdout.write(line ? line.slice(line.indexOf('/')) : '');
`], { encoding: 'utf8' });
if (probe.status !== 0) fail(`loading fuse-native failed:\n${probe.stderr}`);
if (probe.stdout !== expected) fail(`fuse-native loaded ${probe.stdout || 'no addon'}, expected ${expected}`);
console.log(`postinstall: fuse-native patched and built from source (${expected})`);
