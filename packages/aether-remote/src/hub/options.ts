import { AetherError } from '@aether/core/errors';
import type { Registry } from '@aether/core/metrics/registry';

/** Everything a hub runs with. Every limit lives here, with its default. */
export interface HubOptions {
  /** `host:port`; port 0 picks a free port (see `Hub.address`). */
  listen: string;
  /** The embedded store's directory (used when `storeUrl` is empty). */
  dataDir: string;
  /** `postgres://…`: keep everything in that PostgreSQL database, shared with other hubs. Empty: embedded. */
  storeUrl: string;
  /** The shared secret every connection must present in its `hello`. */
  token: string;
  /** PEM certificate and key: serve `wss://` instead of `ws://`. */
  tls?: { cert: Buffer; key: Buffer };
  /** `host:port` of the hub's own `/metrics` endpoint, or `off`. */
  metricsListen: string;
  /** How many changefeed entries the hub keeps; a client whose cursor is older gets a snapshot. */
  feedRetainEntries: number;
  /**
   * How long a chunk neither the tree nor a retained changefeed entry names is kept before its
   * space is given back (a mount may still be fetching it for a snapshot or an entry since pruned).
   */
  chunkGraceMs: number;
  /** Largest WebSocket message accepted; a larger one closes the connection with 1009. */
  maxFrameBytes: number;
  maxBatchEntries: number;
  /**
   * Chunk bytes one connection may have uploaded and not yet committed, held in memory: the hub's
   * staging memory is at most maxConnections × maxStagedBytes. A mount keeps the new data of one
   * batch under this (the welcome says it).
   */
  maxStagedBytes: number;
  maxConnections: number;
  /** A connection that has not said `hello` by then is closed. */
  helloTimeoutMs: number;
  /**
   * The hub pings every connection this often and drops one that answered none of the last three
   * pings; a mount reconnects when it hears nothing for three of them (the welcome says how often).
   * Three beats must stay well under the journal's age limit (`journal_max_age_seconds`, 30 s by
   * default): a hub that went silent must show as offline before writers block for it.
   */
  heartbeatMs: number;
  /** Rejected frames one connection may send before the hub closes it. */
  maxErrorsPerConnection: number;
  /** Rows per snapshot part and entries per changefeed read. */
  pageRows: number;
  /** Wall clock for commit times and conflict names. */
  nowMs: () => number;
  log: (line: string) => void;
  registry?: Registry;
}

export const HUB_DEFAULTS = {
  listen: '127.0.0.1:7420',
  metricsListen: '127.0.0.1:9465',
  feedRetainEntries: 100_000,
  chunkGraceMs: 3_600_000,
  maxFrameBytes: 16 * 1024 * 1024,
  maxBatchEntries: 8192,
  maxStagedBytes: 64 * 1024 * 1024,
  maxConnections: 256,
  helloTimeoutMs: 10_000,
  heartbeatMs: 5_000,
  maxErrorsPerConnection: 16,
  pageRows: 1000,
  storeUrl: '',
} as const;

/** setInterval takes at most 2^31-1 ms (more fires at once); an hour is already past any use. */
export const MAX_HEARTBEAT_MS = 3_600_000;

export type HubOptionsInput = Pick<HubOptions, 'token'> & Partial<Omit<HubOptions, 'token'>>;

export function withDefaults(input: HubOptionsInput): HubOptions {
  const o: HubOptions = { ...HUB_DEFAULTS, dataDir: '', nowMs: () => Date.now(), log: (line) => process.stderr.write(`${line}\n`), ...input };
  if (o.token === '') throw new AetherError('HUB_OPTION_INVALID', 'the hub needs a token (--token or AFS_AETHER_HUB_TOKEN)');
  if (o.storeUrl === '' && o.dataDir === '') throw new AetherError('HUB_OPTION_INVALID', 'the hub needs a data directory (--data) or a PostgreSQL store (--store postgres://…)');
  if (o.storeUrl !== '' && !/^postgres(ql)?:\/\//.test(o.storeUrl)) throw new AetherError('HUB_OPTION_INVALID', `--store: ${JSON.stringify(redactUrl(o.storeUrl))} is not a postgres:// or postgresql:// URL`);
  if (!(o.chunkGraceMs >= 0)) throw new AetherError('HUB_OPTION_INVALID', 'the chunk grace period must be 0 or more');
  if (!(Number.isInteger(o.heartbeatMs) && o.heartbeatMs >= 1 && o.heartbeatMs <= MAX_HEARTBEAT_MS)) {
    throw new AetherError('HUB_OPTION_INVALID', `the heartbeat must be 1..${MAX_HEARTBEAT_MS} ms, got ${o.heartbeatMs}`);
  }
  if (o.feedRetainEntries < 1) throw new AetherError('HUB_OPTION_INVALID', 'feed retention must keep at least 1 entry');
  // A chunk frame (64 KiB + header) and a batch of a few ops must fit in one frame.
  if (o.maxFrameBytes < 128 * 1024) throw new AetherError('HUB_OPTION_INVALID', 'the frame limit must be at least 128 KiB');
  parseListen(o.listen, 'listen');
  if (o.metricsListen !== 'off') parseListen(o.metricsListen, 'metrics-listen');
  return o;
}

/** Splits `host:port` (IPv6 in brackets); throws HUB_OPTION_INVALID with the flag's name. */
export function parseListen(s: string, what: string): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})$/.exec(s);
  if (!m || Number(m[2]) > 65535) throw new AetherError('HUB_OPTION_INVALID', `--${what}=${JSON.stringify(s)}: must be HOST:PORT (IPv6 in brackets), port 0..65535`);
  return { host: (m[1] as string).replace(/^\[(.*)\]$/, '$1'), port: Number(m[2]) };
}

/**
 * A connection URL without its password (also one given as a query parameter), for logs and
 * error lines. One that does not parse loses everything between the scheme and its last `@`: a
 * password holding `/` or `@` showed whole or in part (a review).
 */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    for (const key of [...u.searchParams.keys()]) if (/pass/i.test(key)) u.searchParams.set(key, '***');
    return u.href;
  } catch {
    return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^]*@/i, '$1***@');
  }
}
