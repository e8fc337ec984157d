import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { isAetherError } from '@aether/core/errors';
import { ensureStateDir } from '@aether/core/mount/state-lock';
import { Hub } from '../hub/hub.js';
import { HUB_DEFAULTS, MAX_HEARTBEAT_MS } from '../hub/options.js';
import { EXIT_FAILURE, EXIT_OK, logLine, UsageError, type Io } from './exit.js';

interface HubCliOpts {
  listen: string;
  data: string;
  store?: string;
  token?: string;
  tlsCert?: string;
  tlsKey?: string;
  metricsListen: string;
  feedRetain: string;
  chunkGrace: string;
  maxFrameBytes: string;
  heartbeatMs: string;
}

/** The environment variable a token can come from instead of `--token` (which `ps` shows to everyone). */
export const HUB_TOKEN_ENV = 'AFS_AETHER_HUB_TOKEN';

function wholeNumber(flag: string, value: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const n = Number(value);
  if (!/^[0-9]+$/.test(value) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`--${flag}=${JSON.stringify(value)}: must be a whole number ≥ ${min}${max < Number.MAX_SAFE_INTEGER ? ` and ≤ ${max}` : ''}`);
  }
  return n;
}

function readPem(flag: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new UsageError(`--${flag} ${path}: ${e.code === 'ENOENT' ? 'no such file' : e.code === 'EISDIR' ? 'is a directory' : e.message}`);
  }
}

/** The certificate and key, checked here: a bad file must not surface as an OpenSSL code from deep in the server. */
function readTls(certPath: string, keyPath: string): { cert: Buffer; key: Buffer } {
  const cert = readPem('tls-cert', certPath);
  const key = readPem('tls-key', keyPath);
  let x509: X509Certificate;
  try {
    // X509Certificate also reads DER, which the TLS server does not: PEM only.
    if (!cert.includes('-----BEGIN CERTIFICATE-----')) throw new Error('not PEM');
    x509 = new X509Certificate(cert);
  } catch {
    throw new UsageError(`--tls-cert ${certPath}: not a PEM certificate`);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch {
    throw new UsageError(`--tls-key ${keyPath}: not a PEM private key (or one protected by a passphrase)`);
  }
  if (!x509.checkPrivateKey(privateKey)) throw new UsageError(`--tls-key ${keyPath}: does not belong to the certificate --tls-cert ${certPath}`);
  return { cert, key };
}

/** `aether hub`: serves the committed tree and the changefeed until SIGINT/SIGTERM. */
export function addHubCommand(program: Command, io: Io, setExit: (code: number) => void): void {
  program
    .command('hub')
    .description('run a hub: mounts sync through it over WebSocket (ws://, or wss:// with --tls-cert/--tls-key)')
    .option('--listen <host:port>', 'address to serve on (port 0 picks a free one)', HUB_DEFAULTS.listen)
    .option('--data <dir>', 'directory of the committed tree, chunks and changefeed (the embedded store)', '.aether-hub')
    .option('--store <url>', 'keep them in PostgreSQL instead (postgres://USER@HOST:PORT/DB), shared by every hub given the same database')
    .option('--token <token>', `shared secret every mount must present (default: $${HUB_TOKEN_ENV})`)
    .option('--tls-cert <file>', 'PEM certificate: serve wss://')
    .option('--tls-key <file>', 'PEM private key of --tls-cert')
    .option('--metrics-listen <host:port|off>', 'address of the /metrics endpoint', HUB_DEFAULTS.metricsListen)
    .option('--feed-retain <n>', 'changefeed entries kept; a mount further behind gets a snapshot', String(HUB_DEFAULTS.feedRetainEntries))
    .option('--chunk-grace <seconds>', 'keep a chunk nothing names any more this long before giving its space back', String(HUB_DEFAULTS.chunkGraceMs / 1000))
    .option('--max-frame-bytes <n>', 'largest WebSocket message accepted', String(HUB_DEFAULTS.maxFrameBytes))
    .option('--heartbeat-ms <ms>', 'ping every connection this often; a side that hears nothing for three of them drops the connection', String(HUB_DEFAULTS.heartbeatMs))
    .action(async (opts: HubCliOpts) => {
      const token = opts.token ?? process.env[HUB_TOKEN_ENV] ?? '';
      if (token === '') throw new UsageError(`the hub needs a token: --token T or $${HUB_TOKEN_ENV}`);
      if ((opts.tlsCert === undefined) !== (opts.tlsKey === undefined)) throw new UsageError('--tls-cert and --tls-key go together');
      const tls = opts.tlsCert !== undefined && opts.tlsKey !== undefined ? readTls(opts.tlsCert, opts.tlsKey) : undefined;
      if (opts.store === undefined) {
        try {
          ensureStateDir(resolve(opts.data), '--data');
        } catch (err) {
          throw new UsageError(err instanceof Error ? err.message : String(err));
        }
      }
      let hub: Hub;
      try {
        hub = await Hub.start({
          listen: opts.listen,
          dataDir: resolve(opts.data),
          ...(opts.store !== undefined ? { storeUrl: opts.store } : {}),
          token,
          ...(tls ? { tls } : {}),
          metricsListen: opts.metricsListen,
          feedRetainEntries: wholeNumber('feed-retain', opts.feedRetain, 1),
          chunkGraceMs: wholeNumber('chunk-grace', opts.chunkGrace, 0) * 1000,
          maxFrameBytes: wholeNumber('max-frame-bytes', opts.maxFrameBytes, 128 * 1024),
          heartbeatMs: wholeNumber('heartbeat-ms', opts.heartbeatMs, 100, MAX_HEARTBEAT_MS),
          log: (line) => logLine(io, line),
        });
      } catch (err) {
        if (isAetherError(err, 'HUB_OPTION_INVALID')) throw new UsageError(err.message);
        if (!isAetherError(err)) throw err;
        io.err(`aether: ${err.message}\n`);
        return setExit(EXIT_FAILURE);
      }
      await new Promise<void>((done) => {
        const stop = (signal: NodeJS.Signals): void => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          logLine(io, `aether hub: ${signal}: stopping`);
          hub.close().then(done, (err: unknown) => {
            logLine(io, `aether hub: stop failed: ${String(err)}`);
            done();
          });
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
        // Only now: whoever waits for this line may signal at once (a test's SIGTERM once came first).
        io.out(
          [
            `aether: hub listening on ${hub.url}`,
            hub.storage.kind === 'postgres' ? `  store:    ${hub.storage.where} (PostgreSQL)` : `  data:     ${hub.storage.where}`,
            `  metrics:  ${hub.metricsAddress ? `http://${hub.metricsAddress}/metrics` : 'off'}`,
            `  feed:     hub sequence ${hub.hubSeq}, keeps ${hub.opts.feedRetainEntries} entries`,
            `  chunks:   kept ${hub.opts.chunkGraceMs / 1000} s after nothing names them`,
            `  pings:    every ${hub.opts.heartbeatMs} ms`,
            '',
          ].join('\n'),
        );
      });
      io.out('aether: hub stopped\n');
      setExit(EXIT_OK);
    });
}
