import type { Command } from 'commander';
import { join, resolve } from 'node:path';
import { CONTROL_SOCKET_NAME, isAetherError, resolveConfig, sendControl, type CommandName } from '@aether/core';
import { EXIT_FAILURE, EXIT_OK, UsageError, type Io } from './exit.js';

interface ControlOpts {
  stateDir?: string;
  config?: string;
  json?: boolean;
}

/** The state directory: `--state-dir`, else the configured `state_dir` (same layers as the mount). */
export function stateDirOf(opts: ControlOpts): string {
  if (opts.stateDir !== undefined) return resolve(opts.stateDir);
  return resolve(resolveConfig({ configPath: opts.config }).state_dir);
}

/** Renders a reply for people: nested objects as indented `key: value` lines. */
export function renderPlain(value: unknown, indent = ''): string {
  if (value === null || typeof value !== 'object') return `${indent}${String(value)}\n`;
  let out = '';
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) out += `${indent}${k}:\n${renderPlain(v, indent + '  ')}`;
    else out += `${indent}${k}: ${Array.isArray(v) ? v.map((x) => (typeof x === 'object' ? JSON.stringify(x) : String(x))).join(', ') : String(v)}\n`;
  }
  return out;
}

async function run(cmd: CommandName, opts: ControlOpts, io: Io, setExit: (code: number) => void, args: Record<string, unknown> = {}): Promise<void> {
  let socket: string;
  try {
    socket = join(stateDirOf(opts), CONTROL_SOCKET_NAME);
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message.split('\n')[0] ?? String(err) : String(err));
  }
  try {
    const result = await sendControl(socket, cmd, args);
    io.out(opts.json ? JSON.stringify(result, null, 2) + '\n' : renderPlain(result));
    setExit(EXIT_OK);
  } catch (err) {
    if (!isAetherError(err)) throw err;
    io.err(`aether: ${err.message}\n`);
    setExit(EXIT_FAILURE);
  }
}

function withCommon(c: Command): Command {
  return c
    .option('--state-dir <dir>', 'state directory of the running mount (default: the configured state_dir)')
    .option('--config <file>', 'configuration file used to find state_dir')
    .option('--json', 'print the reply as JSON');
}

/** Commands that talk to a running mount over its control socket. */
export function addControlCommands(program: Command, io: Io, setExit: (code: number) => void): void {
  const groups: [string, string, [string, CommandName, string][]][] = [
    ['cache', 'inspect or clear the local cache', [['inspect', 'CACHE INSPECT', 'dirty and clean bytes, quotas, disk free, backpressure'], ['clear', 'CACHE CLEAR', 'drop clean cached data (never dirty data)']]],
    ['journal', 'the write-ahead journal', [['flush', 'JOURNAL FLUSH', 'make every appended record durable now (reason manual)']]],
    ['sync', 'draining the journal to the store or hub', [['pause', 'SYNC PAUSE', 'stop draining (pending work accumulates; once a high-water mark is reached, writers wait until resume and cannot be interrupted meanwhile, as with any FUSE request)'], ['resume', 'SYNC RESUME', 'drain again']]],
    ['backpressure', 'writer backpressure', [['status', 'BACKPRESSURE STATUS', 'engaged state, sources and reasons']]],
    ['store', 'the embedded store (local mode) or the replica of the hub\'s tree (bridge mode)', [['reclaim', 'STORE RECLAIM', 'give back the space of deleted and overwritten data now (it also runs by itself, at most once a minute)']]],
  ];
  for (const [group, desc, subs] of groups) {
    let g = program.commands.find((c) => c.name() === group);
    g ??= program.command(group).description(desc);
    for (const [name, cmd, help] of subs) {
      withCommon(g.command(name).description(help)).action((opts: ControlOpts) => run(cmd, opts, io, setExit));
    }
  }
  withCommon(program.command('status').description('state of the running mount: mount point, state dir, metrics address, sync state')).action((opts: ControlOpts) =>
    run('STATUS', opts, io, setExit),
  );
  const config = program.commands.find((c) => c.name() === 'config');
  if (config) withCommon(config.command('reload').description('re-read every configuration layer in the running mount')).action((opts: ControlOpts) => run('CONFIG RELOAD', opts, io, setExit));
}
