import type { Command } from 'commander';
import { ConfigError, ConfigStore, isAetherError, LocalMount } from '@aether/core';
import { BridgeOrchestrator } from '../mount/orchestrator.js';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, logLine, type Io } from './exit.js';

interface MountOpts {
  stateDir?: string;
  config?: string;
  allowOther?: boolean;
  graceMs?: string;
  bridge?: string;
  token?: string;
}

/** Errors that mean the user asked for something impossible, not that Aether failed. */
const USAGE_CODES = new Set(['MOUNT_MISSING', 'MOUNT_NOT_DIRECTORY', 'MOUNT_NOT_EMPTY', 'MOUNT_BUSY', 'MOUNT_OPTION_INVALID', 'STATE_DIR_INVALID', 'BRIDGE_AUTH_FAILED']);

/** `aether mount MOUNTPOINT`: runs in the foreground until SIGINT/SIGTERM; SIGHUP reloads the configuration. */
export function addMountCommand(program: Command, io: Io, setExit: (code: number) => void): void {
  const START_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  program
    .command('mount')
    .description('mount the tree at MOUNTPOINT (local mode: the journal drains into an embedded store; with --bridge, it syncs through a hub)')
    .argument('<mountpoint>', 'an empty directory')
    .option('--state-dir <dir>', 'journal, cache, store and control socket (default: state_dir of the configuration)')
    .option('--config <file>', 'configuration file (default: $AFS_AETHER_CONFIG, else ./aether.toml)')
    .option('--allow-other', 'let other users use the mount (FUSE allow_other, with default_permissions)')
    .option('--grace-ms <ms>', 'how long to keep draining at shutdown', '5000')
    .option('--bridge <url[,url...]>', 'sync through the hub at ws://HOST:PORT or wss://HOST:PORT; several hubs of one PostgreSQL store, comma-separated, are failed over in turn (overrides [bridge] url)')
    .option('--token <token>', 'the hub token (overrides [bridge] token; prefer AFS_AETHER_BRIDGE_TOKEN: arguments are visible to other users)')
    .action(async (mountpoint: string, opts: MountOpts) => {
      const graceMs = Number(opts.graceMs);
      if (!/^[0-9]+$/.test(opts.graceMs ?? '') || !Number.isSafeInteger(graceMs)) {
        io.err(`aether: --grace-ms=${JSON.stringify(opts.graceMs)}: must be a whole number of milliseconds\n`);
        return setExit(EXIT_USAGE);
      }
      let config: ConfigStore;
      try {
        config = new ConfigStore({
          configPath: opts.config,
          env: process.env,
          overrides: {
            ...(opts.stateDir !== undefined ? { state_dir: opts.stateDir } : {}),
            ...(opts.bridge !== undefined ? { bridge_url: opts.bridge } : {}),
            ...(opts.token !== undefined ? { bridge_token: opts.token } : {}),
          },
        });
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        for (const line of err.lines) io.err(`aether: ${line}\n`);
        return setExit(EXIT_USAGE);
      }
      for (const w of config.warnings) io.err(`aether: warning: ${w}\n`);
      // Signals while the mount starts. Before the FUSE mount is made a signal ends the process at
      // once, as it always did (nothing to unmount; a first start may wait for its hub for ever).
      // Once it is being made, the default action would leave the mount point dead ("Transport
      // endpoint is not connected"): the stop, or a reload, waits until the start has finished.
      let mounting = false;
      let stopEarly: NodeJS.Signals | undefined;
      let reloadEarly = false;
      const duringStart = (signal: NodeJS.Signals): void => {
        if (!mounting) {
          // As it always did (a closed terminal's SIGHUP included): a headless start that mounts
          // once its hub appears is not what was asked for.
          unlisten();
          return void process.kill(process.pid, signal);
        }
        if (signal === 'SIGHUP') return void (reloadEarly = true);
        stopEarly ??= signal;
        logLine(io, `aether: ${signal}: stopping once the mount has started`);
      };
      const unlisten = (): void => {
        for (const sig of START_SIGNALS) process.off(sig, duringStart);
      };
      for (const sig of START_SIGNALS) process.on(sig, duringStart);
      let mount: LocalMount;
      // Unmounted from outside before the stop below exists: acted on once it does.
      let unmountedEarly = false;
      let outside: () => void = () => (unmountedEarly = true);
      try {
        const { url, token } = config.current.bridge;
        // The token goes to the hub only: never into a log line, the banner or STATUS.
        const remote = url ? new BridgeOrchestrator({ url, token }) : undefined;
        mount = await LocalMount.start({ mountpoint, config, allowOther: opts.allowOther ?? false, log: (line) => logLine(io, `aether: ${line}`),
          onMounting: () => (mounting = true),
          onUnmountedOutside: () => outside(),
          ...(remote ? { remote } : {}),
        });
      } catch (err) {
        unlisten();
        io.err(`aether: cannot mount ${mountpoint}: ${err instanceof Error ? err.message : String(err)}\n`);
        const code = isAetherError(err) && USAGE_CODES.has(err.code) ? EXIT_USAGE : EXIT_FAILURE;
        setExit(code);
        // Whatever still waits (a call into a hung FUSE server under the mount point's parent) must not keep it.
        setTimeout(() => process.exit(code), 200).unref();
        return;
      }
      const s = mount.status();
      const banner = [
        s.mode === 'bridge' ? `aether: mounted ${String(s.mountpoint)} (bridge mode, hub ${(s.bridge as { hub_urls: string[] }).hub_urls.join(', ')})` : `aether: mounted ${String(s.mountpoint)} (local mode)`,
        `  state:    ${String(s.state_dir)}`,
        `  metrics:  ${s.metrics_address === 'off' ? 'off' : `http://${String(s.metrics_address)}/metrics`}`,
        `  control:  npx aether status --state-dir ${String(s.state_dir)}`,
        `  stop:     Ctrl-C or kill -TERM ${process.pid} (unmounts cleanly); kill -HUP ${process.pid} reloads the configuration`,
        '',
      ].join('\n');
      let stopping = false;
      let stopFailed = false;
      let stopped: () => void = () => undefined;
      const stop = (signal: NodeJS.Signals | 'unmounted'): void => {
        // A terminal's Ctrl-C reaches both `npm start` and this process: later signals are noted, not fatal.
        if (stopping) return void logLine(io, `aether: ${signal}: already stopping`);
        stopping = true;
        logLine(io, `aether: ${signal}: stopping (flush, drain up to ${graceMs} ms${signal === 'unmounted' ? '' : ', unmount'})`);
        mount.stop(graceMs).then(
          () => stopped(),
          (err: unknown) => {
            // Every step ran; a failed one (the shutdown flush above all) must not look like a clean stop.
            logLine(io, `aether: ${err instanceof Error ? err.message : String(err)}`);
            stopFailed = true;
            stopped();
          },
        );
      };
      const onHup = (): void => {
        try {
          const r = mount.reload('signal');
          logLine(io, `aether: SIGHUP: configuration reloaded (changed: ${(r.changed_sections as string[]).join(', ') || 'nothing'})`);
        } catch (err) {
          logLine(io, `aether: SIGHUP: ${err instanceof Error ? err.message : String(err)}`);
        }
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
      process.on('SIGHUP', onHup);
      outside = () => stop('unmounted');
      unlisten();
      // Only now: whoever waits for this line may signal at once, and must get a clean unmount.
      io.out(banner);
      if (stopEarly) stop(stopEarly);
      else if (unmountedEarly) stop('unmounted');
      else if (reloadEarly) onHup();
      await new Promise<void>((resolve) => (stopped = resolve));
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      process.off('SIGHUP', onHup);
      if (!stopFailed) io.out('aether: unmounted\n');
      const code = stopFailed ? EXIT_FAILURE : EXIT_OK;
      setExit(code);
      // Native FUSE threads can outlive the unmount; they must not keep a stopped mount's process alive.
      setTimeout(() => process.exit(code), 1000).unref();
    });
}
