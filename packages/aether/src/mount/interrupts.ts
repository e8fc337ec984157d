/**
 * Interrupted FUSE requests. Once a request has reached the file system, the kernel lets the
 * program that made it go only when it is answered, even on SIGKILL: a writer held by
 * backpressure (sync paused, the hub away past `journal_max_age_seconds`) could not be killed or
 * stopped with Ctrl-C. The kernel sends INTERRUPT for such a request on the first signal; the
 * patched binding notes the interrupted requests still waiting for JS (fuse_native_take_interrupts),
 * and a wait made `interruptible` ends with EINTR, before the change is made.
 */

/** A request, as the binding names it: the buffer of the FUSE thread that waits for its answer. */
type Handle = object;

/** How often noted interrupts are taken while a request waits: what a killed program may wait more. */
export const INTERRUPT_POLL_MS = 100;

let running: Handle | null = null;
let source: (() => Handle[]) | null = null;
const waits = new Map<Handle, { cancel: () => void }>();
let timer: NodeJS.Timeout | null = null;

/** Where the interrupted requests come from (the patched binding), or null (none are). */
export function setInterruptSource(take: (() => Handle[]) | null): void {
  source = take;
}

/** Runs the synchronous part of a handler as the answer to request `handle` (null: none). */
export function runAs<T>(handle: Handle | null, fn: () => T): T {
  const before = running;
  running = handle;
  try {
    return fn();
  } finally {
    running = before;
  }
}

function interrupted(): Error {
  return Object.assign(new Error('interrupted while waiting (backpressure): nothing was changed'), { code: 'EINTR' });
}

function poll(): void {
  for (const h of source?.() ?? []) waits.get(h)?.cancel();
}

/**
 * `start(signal)`'s wait, or a rejection with EINTR once the request whose handler called this
 * (synchronously) is interrupted: `signal` aborts then, and the wait should end (the gate takes
 * the writer out of its queue). Outside a request, or without a source, `start()` alone.
 */
export function interruptible<T>(start: (signal?: AbortSignal) => Promise<T>): Promise<T> {
  const h = running;
  if (h === null || source === null) return start();
  const abort = new AbortController();
  const entry = { cancel: (): void => abort.abort(interrupted()) };
  const settle = (): void => {
    if (waits.get(h) === entry) waits.delete(h);
    if (waits.size === 0 && timer) {
      clearInterval(timer);
      timer = null;
    }
  };
  waits.set(h, entry);
  timer ??= setInterval(poll, INTERRUPT_POLL_MS).unref();
  const wait = start(abort.signal);
  wait.then(settle, settle);
  return wait;
}
