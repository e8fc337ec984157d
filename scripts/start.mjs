// README command one, the main job: a local-mode mount at ./aether-mnt with its state in
// ./aether-state, in the foreground until Ctrl-C. Override with AETHER_MNT / AETHER_STATE.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const mnt = resolve(process.env.AETHER_MNT ?? join(root, 'aether-mnt'));
const state = resolve(process.env.AETHER_STATE ?? join(root, 'aether-state'));

if (!existsSync('/dev/fuse')) {
  console.error('npm start: /dev/fuse is missing: this machine cannot mount FUSE file systems (load the fuse module or run in a container with --device /dev/fuse)');
  process.exit(1);
}
mkdirSync(mnt, { recursive: true });
console.log(`npm start: mounting Aether (local mode) at ${mnt}, state in ${state}`);
console.log(`  use it:   ls ${mnt}; cp -a SOMETHING ${mnt}/; git init ${mnt}/repo`);
console.log(`  inspect:  npx aether status --state-dir ${state}   (cache inspect, backpressure status, journal inspect, sync pause|resume)`);
const child = spawn(process.execPath, [join(root, 'packages/aether-remote/bin/aether.js'), 'mount', mnt, '--state-dir', state, ...process.argv.slice(2)], { stdio: 'inherit' });
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => child.kill(sig));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
