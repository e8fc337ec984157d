import type { Setting } from './types.js';

export const runtimeSettings: Setting[] = [
  {
    path: ['state_dir'],
    env: 'AFS_AETHER_STATE_DIR',
    override: 'state_dir',
    cliFlag: '--state-dir',
    type: { kind: 'path' },
    default: '.aether',
    defaultNote: '`.aether` under the working directory',
    section: 'runtime',
    reloadable: false,
    doc: {
      whatItDoes: [
        'Names the directory that holds the mount\'s local state: the journal, the cache, the embedded store (local mode) and the control socket.',
        'A relative path is taken from the working directory of the process that reads the configuration.',
      ],
      runtime: ['Read at start; a changed value needs a restart (a reload reports it as restart-required).'],
      valueNotes: ['Must be a non-empty path without NUL bytes.', 'The `--state-dir` flag of `aether mount` and the control commands sets the same value as an override.'],
      interactions: ['The cache\'s free-space checks (`AFS_AETHER_CACHE_MIN_FREE_BYTES`) measure the file system that holds this directory.'],
      observability: ['`aether status --json` reports the state directory.'],
      example: {
        env: { AFS_AETHER_STATE_DIR: '/var/lib/aether/work' },
        toml: 'state_dir = "/var/lib/aether/work"',
        explanation: 'Journal, cache and control socket live under /var/lib/aether/work.',
      },
    },
    sources: ['packages/aether/src/config/schema/runtime.ts'],
  },
  {
    path: ['metrics_listen'],
    env: 'AFS_AETHER_METRICS_LISTEN',
    override: 'metrics_listen',
    type: { kind: 'listen' },
    default: '127.0.0.1:9464',
    section: 'runtime',
    reloadable: false,
    doc: {
      whatItDoes: ['Sets the address of the Prometheus `/metrics` HTTP endpoint of a mount, or `off` to serve none.'],
      runtime: [
        'Port `0` picks a free port; `aether status --json` reports the address actually bound.',
        'Read at start; a changed value needs a restart (a reload reports it as restart-required).',
      ],
      valueNotes: ['IPv6 hosts are written in brackets: `[::1]:9464`.'],
      interactions: ['Several mounts on one machine need distinct ports (or port 0).'],
      observability: ['All `aether_*` metrics are served here.'],
      example: {
        env: { AFS_AETHER_METRICS_LISTEN: '127.0.0.1:0' },
        toml: 'metrics_listen = "127.0.0.1:0"',
        explanation: 'Serves metrics on a free loopback port.',
      },
    },
    sources: ['packages/aether/src/config/schema/runtime.ts'],
  },
];
