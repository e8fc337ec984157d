/** Exit codes of the `aether` command. */
export const EXIT_OK = 0;
/** A runtime failure (a mount that cannot be reached, an I/O error). */
export const EXIT_FAILURE = 1;
/** Bad input: unknown flags or commands, an invalid configuration, an unknown setting name. */
export const EXIT_USAGE = 2;

/** A user mistake: printed as one line, never as a stack trace. */
export class UsageError extends Error {
  readonly code = 'USAGE';
  constructor(message: string, readonly exitCode = EXIT_USAGE) {
    super(message);
    this.name = 'UsageError';
  }
}

export interface Io {
  out(text: string): void;
  err(text: string): void;
}

/** Once a reader has gone (`aether store verify | head`, a log collector restarted), the rest of
 * the output is dropped: a command, a mount or a hub printing to a closed pipe goes on as if it
 * had been read (each crashed with an unhandled EPIPE, a mount leaving its mount point dead).
 * stderr too: the mount's and the hub's log lines are written there directly. */
const gone = { stdout: false, stderr: false };
for (const name of ['stdout', 'stderr'] as const) {
  process[name].on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE' && err.code !== 'ERR_STREAM_DESTROYED') throw err;
    gone[name] = true;
  });
}

export const processIo: Io = {
  out: (text) => {
    if (!gone.stdout) process.stdout.write(text);
  },
  err: (text) => {
    if (!gone.stderr) process.stderr.write(text);
  },
};

/**
 * One line of a running mount's or hub's log, stamped with the time (UTC, to the millisecond):
 * a log redirected to a file or read after the fact must say when. Not under systemd, whose
 * journal stamps every line itself (it sets JOURNAL_STREAM for a service whose output it takes).
 */
export function logLine(io: Io, text: string): void {
  io.err(`${process.env.JOURNAL_STREAM ? '' : `${new Date().toISOString()} `}${text}\n`);
}
