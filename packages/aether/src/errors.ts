/**
 * Aether's typed errors: one class with a stable `code`, so callers branch on `err.code`,
 * never on message text. `errno` is the POSIX error a file system operation answers with.
 */
export type AetherErrorCode =
  | 'JOURNAL_CORRUPT'
  | 'JOURNAL_SEGMENT_MISSING'
  | 'JOURNAL_CLOSED'
  | 'JOURNAL_FSYNC_FAILED'
  | 'JOURNAL_WRITE_FAILED'
  | 'JOURNAL_RECORD_TOO_LARGE'
  | 'JOURNAL_NOT_FOUND'
  | 'CACHE_DIRTY_QUOTA'
  | 'CACHE_CORRUPT'
  | 'CACHE_CLOSED'
  | 'BACKPRESSURE_CLOSED'
  | 'BACKPRESSURE_QUEUE_FULL'
  | 'STORE_CORRUPT'
  | 'STORE_OPEN_FAILED'
  | 'STORE_WRITE_FAILED'
  | 'CONTROL_UNAVAILABLE'
  | 'CONTROL_BAD_REQUEST'
  | 'MOUNT_MISSING'
  | 'MOUNT_NOT_DIRECTORY'
  | 'MOUNT_NOT_EMPTY'
  | 'MOUNT_BUSY'
  | 'MOUNT_STALE'
  | 'STATE_DIR_BUSY'
  | 'STATE_DIR_INVALID'
  | 'MOUNT_OPTION_INVALID'
  | 'MOUNT_FAILED'
  | 'UNMOUNT_FAILED'
  | 'MOUNT_STOP_FAILED'
  | 'HUB_OPTION_INVALID'
  | 'HUB_LISTEN_FAILED'
  | 'HUB_STORE_FAILED'
  | 'BRIDGE_AUTH_FAILED'
  | 'BRIDGE_REJECTED'
  | 'BRIDGE_PROTOCOL'
  | 'BRIDGE_CHUNKS_GONE'
  | 'BRIDGE_CLOSED';

export class AetherError extends Error {
  readonly code: AetherErrorCode;
  readonly errno: string | undefined;
  readonly context: Readonly<Record<string, unknown>>;

  constructor(code: AetherErrorCode, message: string, opts: { errno?: string; context?: Record<string, unknown>; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'AetherError';
    this.code = code;
    this.errno = opts.errno;
    this.context = Object.freeze({ ...opts.context });
  }
}

export function isAetherError(err: unknown, code?: AetherErrorCode): err is AetherError {
  return err instanceof AetherError && (code === undefined || err.code === code);
}
