import type { Command } from 'commander';
import { join } from 'node:path';
import { CONTROL_SOCKET_NAME, isAetherError, sendControl } from '@aether/core';
import { stateDirOf } from './control-commands.js';
import { EXIT_FAILURE, EXIT_OK, UsageError, type Io } from './exit.js';

interface WaitOpts {
  stateDir?: string;
  config?: string;
  timeout: string;
  json?: boolean;
}

interface Pending {
  entries: number;
  bytes: number;
  paused: boolean;
  /** Bridge mode, the hub unreachable: since when and why. */
  offline?: { since: string; problem: string | null };
}

const POLL_MS = 200;
const BAR_CELLS = 30;

async function pendingOf(socket: string): Promise<Pending> {
  const s = (await sendControl(socket, 'STATUS')) as {
    journal: { pending_entries: number; pending_bytes: number };
    sync: { state: string };
    bridge?: { connected: boolean; offline_since: string | null; last_heard: string | null; problem: string | null };
  };
  const b = s.bridge;
  // Connected with a problem: the hub went silent without closing (last heard is then the "since").
  const offline = b && !b.connected && b.offline_since ? { since: b.offline_since, problem: b.problem } : b?.connected && b.problem && b.last_heard ? { since: b.last_heard, problem: b.problem } : undefined;
  return { entries: s.journal.pending_entries, bytes: s.journal.pending_bytes, paused: s.sync.state === 'paused', ...(offline ? { offline } : {}) };
}

function bar(done: number, total: number): string {
  const frac = total === 0 ? 1 : Math.min(1, done / total);
  const full = Math.round(frac * BAR_CELLS);
  return `[${'#'.repeat(full)}${'.'.repeat(BAR_CELLS - full)}] ${(frac * 100).toFixed(0).padStart(3)}%`;
}

/**
 * `aether sync wait`: blocks until everything pending on the mount is committed downstream (the
 * embedded store in local mode), with a progress bar on a terminal and plain lines otherwise;
 * exits 1 when `--timeout` passes first.
 */
export function addSyncWait(program: Command, io: Io, setExit: (code: number) => void, isTty = (): boolean => process.stderr.isTTY === true): void {
  const sync = program.commands.find((c) => c.name() === 'sync') ?? program.command('sync');
  sync
    .command('wait')
    .description('wait until everything pending on the mount is committed; progress on stderr')
    .option('--state-dir <dir>', 'state directory of the running mount (default: the configured state_dir)')
    .option('--config <file>', 'configuration file used to find state_dir')
    .option('--timeout <seconds>', 'give up after this many seconds (exit 1)', '600')
    .option('--json', 'print the outcome as JSON on stdout (no progress)')
    .action(async (opts: WaitOpts) => {
      if (!/^[0-9]+$/.test(opts.timeout)) throw new UsageError(`--timeout=${JSON.stringify(opts.timeout)}: must be a whole number of seconds`);
      const deadline = Date.now() + Number(opts.timeout) * 1000;
      const socket = join(stateDirOf(opts), CONTROL_SOCKET_NAME);
      const tty = !opts.json && isTty();
      const outcome = (p: Pending): string => JSON.stringify({ committed: p.entries === 0, pending_entries: p.entries, pending_bytes: p.bytes, sync: p.paused ? 'paused' : 'running' }) + '\n';
      let first: number | undefined;
      let lastLine = 0;
      try {
        for (;;) {
          const p = await pendingOf(socket);
          first ??= p.entries;
          const note = p.paused ? ' (sync is paused)' : p.offline ? ` (the hub is unreachable since ${p.offline.since}${p.offline.problem ? `: ${p.offline.problem}` : ''})` : '';
          if (tty) io.err(`\r${bar(first - p.entries, first)} ${p.entries} entries, ${p.bytes} bytes pending${note}   `);
          else if (!opts.json && (Date.now() - lastLine >= 1000 || p.entries === 0)) {
            io.err(`aether: sync wait: ${p.entries} entries, ${p.bytes} bytes pending${note}\n`);
            lastLine = Date.now();
          }
          if (p.entries === 0) {
            if (tty) io.err('\n');
            io.out(opts.json ? outcome(p) : 'all committed\n');
            return setExit(EXIT_OK);
          }
          if (Date.now() >= deadline) {
            if (tty) io.err('\n');
            if (opts.json) io.out(outcome(p));
            io.err(`aether: sync wait: timed out after ${opts.timeout} s with ${p.entries} entries still pending${note}\n`);
            return setExit(EXIT_FAILURE);
          }
          await new Promise((r) => setTimeout(r, POLL_MS));
        }
      } catch (err) {
        if (!isAetherError(err)) throw err;
        io.err(`aether: ${err.message}\n`);
        setExit(EXIT_FAILURE);
      }
    });
}
