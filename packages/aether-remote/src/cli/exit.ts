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

/** Once a reader has gone (`aether store verify | head`), the rest of the output is dropped: a
 * command, or a mount printing to a closed pipe, goes on as if it had been read (it crashed with
 * an unhandled EPIPE). */
let stdoutGone = false;
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE') throw err;
  stdoutGone = true;
});

export const processIo: Io = {
  out: (text) => {
    if (!stdoutGone) process.stdout.write(text);
  },
  err: (text) => process.stderr.write(text),
};
