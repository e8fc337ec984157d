import type { Setting } from './types.js';

const BACKOFF_SOURCES = [
  'packages/aether/src/config/schema/bridge.ts',
  'packages/aether/src/config/rules.ts',
  'packages/aether-remote/src/bridge/backoff.ts',
  'packages/aether-remote/src/mount/orchestrator.ts',
];
const FORMULA =
  'Attempt n (n = 0 for the first retry after a disconnect or failed connect): `base = min(max_ms, start_ms × multiplier^n)`, `delay = min(max_ms, base × (1 + jitter_factor × u))` with `u` uniform in [-1, 1]. The attempt counter resets after a connection completes its handshake.';
const APPLIES = (others: string[]): string[] => [
  'Bridge mode reconnect policy used by the changefeed bridge client.',
  `Applied together with: ${others.map((o) => `\`${o}\``).join(', ')}.`,
  FORMULA,
  'A config reload applies new values from the next reconnect attempt.',
];
const BACKOFF_SIGNALS = ['`aether_bridge_connected`', '`aether_bridge_reconnect_attempts_total`', '`aether_bridge_reconnect_delay_ms` (the delays chosen)'];
const ALL = ['AFS_AETHER_RECONNECT_START_MS', 'AFS_AETHER_RECONNECT_MAX_MS', 'AFS_AETHER_RECONNECT_MULTIPLIER', 'AFS_AETHER_RECONNECT_JITTER_PERCENT'];
const others = (self: string): string[] => ALL.filter((x) => x !== self);

export const bridgeSettings: Setting[] = [
  {
    path: ['bridge', 'url'],
    env: 'AFS_AETHER_BRIDGE_URL',
    override: 'bridge_url',
    cliFlag: '--bridge',
    type: { kind: 'string' },
    default: '',
    defaultNote: 'empty = local mode',
    section: 'bridge',
    reloadable: false,
    doc: {
      whatItDoes: [
        'Names the hub a mount syncs through (`ws://HOST:PORT` or `wss://HOST:PORT`). Empty runs the mount in local mode: the journal drains into an embedded store.',
        'Several URLs separated by commas name hubs sharing one PostgreSQL store: the mount connects to the first, and every failed connect or lost connection moves to the next one (wrapping), each attempt paced by the reconnect backoff; a completed handshake resets the backoff and the mount stays on that hub.',
      ],
      runtime: ['Read at start; a changed value needs a restart (a reload reports it as restart-required).', 'The `--bridge` flag of `aether mount` sets the same value as an override.'],
      valueNotes: [],
      interactions: ['Needs `AFS_AETHER_BRIDGE_TOKEN` when the hub requires a token.'],
      observability: ['`aether status` shows the orchestrator state (starting, connecting, online, backing off, stopping).'],
      example: { env: { AFS_AETHER_BRIDGE_URL: 'ws://127.0.0.1:7420' }, toml: '[bridge]\nurl = "ws://127.0.0.1:7420"', explanation: 'The mount ships its journal to the hub at 127.0.0.1:7420.' },
    },
    sources: ['packages/aether/src/config/schema/bridge.ts', 'packages/aether-remote/src/mount/orchestrator.ts', 'packages/aether-remote/src/bridge/hub-urls.ts'],
  },
  {
    path: ['bridge', 'token'],
    env: 'AFS_AETHER_BRIDGE_TOKEN',
    override: 'bridge_token',
    cliFlag: '--token',
    type: { kind: 'string', secret: true },
    default: '',
    defaultNote: 'empty',
    section: 'bridge',
    reloadable: false,
    doc: {
      whatItDoes: ['The shared secret a mount presents to the hub on every connection.'],
      runtime: ['Read at start; a changed value needs a restart.', 'Never printed in full: `aether config show` shows only its length.'],
      valueNotes: [],
      interactions: ['Prefer the environment or a file readable only by its owner over the command line, where other users can see it.'],
      observability: ['A rejected token is logged by the hub and counted in its rejected-requests metric.'],
      example: { env: { AFS_AETHER_BRIDGE_TOKEN: 's3cret-token' }, toml: '[bridge]\ntoken = "s3cret-token"', explanation: 'The mount authenticates to the hub with this token.' },
    },
    sources: ['packages/aether/src/config/schema/bridge.ts', 'packages/aether-remote/src/bridge/client.ts'],
  },
  {
    path: ['bridge', 'reconnect_backoff', 'start_ms'],
    env: 'AFS_AETHER_RECONNECT_START_MS',
    type: { kind: 'u64', unit: 'ms' },
    default: 1000,
    defaultNote: '1s',
    section: 'bridge.reconnect_backoff',
    reloadable: true,
    range: { minExclusive: 0 },
    doc: {
      whatItDoes: [
        'Sets the initial delay for bridge reconnect exponential backoff.',
        'On reconnect attempts, the delay starts at `start_ms`, then grows by `multiplier`, with jitter applied, and is capped by `max_ms`.',
        'This value controls how quickly the first retry happens after a disconnect/error.',
      ],
      runtime: APPLIES(others('AFS_AETHER_RECONNECT_START_MS')),
      valueNotes: ['Other reconnect parameters are validated together in the same block.', 'There is no `ConfigOverrides` field for this setting.'],
      interactions: [
        'Lower values retry sooner after failures but can increase reconnect pressure.',
        'Higher values reduce immediate retry pressure but slow recovery.',
        'Keep this aligned with your `max_ms` and `multiplier` goals.',
      ],
      observability: BACKOFF_SIGNALS,
      example: { env: { AFS_AETHER_RECONNECT_START_MS: '1500' }, toml: '[bridge.reconnect_backoff]\nstart_ms = 1500', explanation: 'The first retry after a disconnect waits about 1.5 s (± jitter).' },
    },
    sources: BACKOFF_SOURCES,
  },
  {
    path: ['bridge', 'reconnect_backoff', 'max_ms'],
    env: 'AFS_AETHER_RECONNECT_MAX_MS',
    type: { kind: 'u64', unit: 'ms' },
    default: 30000,
    defaultNote: '30s',
    section: 'bridge.reconnect_backoff',
    reloadable: true,
    doc: {
      whatItDoes: ['Caps every bridge reconnect delay, jitter included.'],
      runtime: APPLIES(others('AFS_AETHER_RECONNECT_MAX_MS')),
      valueNotes: ['There is no `ConfigOverrides` field for this setting.'],
      interactions: ['The longest a mount waits before noticing that a hub came back.'],
      observability: BACKOFF_SIGNALS,
      example: { env: { AFS_AETHER_RECONNECT_MAX_MS: '10000' }, toml: '[bridge.reconnect_backoff]\nmax_ms = 10000', explanation: 'No reconnect delay exceeds 10 s.' },
    },
    sources: BACKOFF_SOURCES,
  },
  {
    path: ['bridge', 'reconnect_backoff', 'multiplier'],
    env: 'AFS_AETHER_RECONNECT_MULTIPLIER',
    type: { kind: 'f64', unit: 'factor' },
    default: 2.0,
    section: 'bridge.reconnect_backoff',
    reloadable: true,
    range: { min: 1 },
    doc: {
      whatItDoes: ['Sets the growth factor of the reconnect delay from one attempt to the next.'],
      runtime: APPLIES(others('AFS_AETHER_RECONNECT_MULTIPLIER')),
      valueNotes: ['`1.0` gives a constant delay of `start_ms`.', 'A TOML integer is accepted (`multiplier = 2` means 2.0).', 'There is no `ConfigOverrides` field for this setting.'],
      interactions: ['Keep this aligned with `start_ms` and `max_ms`: the cap is reached after about log(max/start)/log(multiplier) attempts.'],
      observability: BACKOFF_SIGNALS,
      example: { env: { AFS_AETHER_RECONNECT_MULTIPLIER: '1.5' }, toml: '[bridge.reconnect_backoff]\nmultiplier = 1.5', explanation: 'Each retry waits 1.5 times as long as the previous one, up to `max_ms`.' },
    },
    sources: BACKOFF_SOURCES,
  },
  {
    path: ['bridge', 'reconnect_backoff', 'jitter_percent'],
    env: 'AFS_AETHER_RECONNECT_JITTER_PERCENT',
    type: { kind: 'f64', unit: 'percent' },
    default: 20.0,
    defaultNote: '20%',
    section: 'bridge.reconnect_backoff',
    reloadable: true,
    range: { min: 0, max: 100 },
    doc: {
      whatItDoes: [
        'Controls random jitter applied to bridge reconnect backoff delays.',
        'Aether maps this percentage to the bridge client jitter factor as: `jitter_factor = jitter_percent / 100.0`.',
        'So 20.0 becomes 0.20, meaning each reconnect delay is randomly adjusted within the configured jitter envelope. This reduces thundering-herd reconnect behavior when many clients reconnect at once.',
      ],
      runtime: APPLIES(others('AFS_AETHER_RECONNECT_JITTER_PERCENT')),
      valueNotes: ['A TOML integer is accepted (`jitter_percent = 20` means 20.0).', 'There is no `ConfigOverrides` field for this setting.'],
      interactions: [
        '`0` disables jitter (deterministic backoff).',
        '10-30 is usually a sane production range.',
        'Very high jitter increases reconnect spread and can slow average recovery.',
      ],
      observability: BACKOFF_SIGNALS,
      example: { env: { AFS_AETHER_RECONNECT_JITTER_PERCENT: '12.5' }, toml: '[bridge.reconnect_backoff]\njitter_percent = 12.5', explanation: 'Each reconnect delay lies within ±12.5% of its base (never above `max_ms`).' },
    },
    sources: BACKOFF_SOURCES,
  },
];
