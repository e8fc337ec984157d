/**
 * The control protocol: one JSON request per line over the Unix socket `<state_dir>/control.sock`
 * (mode 0600), one JSON reply per line.
 */
export const CONTROL_SOCKET_NAME = 'control.sock';
/** Longest request line accepted; control requests are tiny. */
export const MAX_REQUEST_BYTES = 64 * 1024;

export const COMMANDS = [
  'CACHE INSPECT',
  'CACHE CLEAR',
  'JOURNAL INSPECT',
  'JOURNAL FLUSH',
  'BACKPRESSURE STATUS',
  'SYNC PAUSE',
  'SYNC RESUME',
  'SYNC WAIT',
  'CONFIG SHOW',
  'CONFIG RELOAD',
  'STORE RECLAIM',
  'STATUS',
] as const;
export type CommandName = (typeof COMMANDS)[number];

export interface ControlRequest {
  cmd: CommandName;
  args?: Record<string, unknown>;
}

export type ControlReply = { ok: true; result: unknown } | { ok: false; error: string };
