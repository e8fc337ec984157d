// README command one: the main job. Until the mount lands it shows the resolved configuration.
import { spawnSync } from 'node:child_process';

const r = spawnSync(process.execPath, ['packages/aether-remote/bin/aether.js', 'config', 'show', ...process.argv.slice(2)], { stdio: 'inherit' });
process.exit(r.status ?? 1);
