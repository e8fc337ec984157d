import type { JournalSpan } from '../runtime/journal/journal.js';

/** What the drain needs of the journal. */
export interface DrainJournal {
  readonly lastSeq: number;
  readonly durableSeq: number;
  readonly committedSeq: number;
  /** Where entries lie on disk, for the local drain's writer thread to read them itself. */
  spans(fromSeq: number, upToSeq: number, maxBytes: number): JournalSpan[];
  /** The entries themselves, for the bridge drain, which turns them into the hub's per-file ops. */
  entries(opts: { fromSeq?: number }): AsyncGenerator<{ seq: number; type: number; payload: Buffer }>;
  commit(seq: number): Promise<void>;
  /** Bytes and entries appended and not yet committed. */
  pending(): { pendingBytes: number; pendingEntries: number };
}

/** What the drain needs of the store: its writer (in local mode, the store's writer thread). */
export interface DrainStore {
  readonly appliedSeq: number;
  /** Applies the entries `spans` locate (read where they are applied, off this thread). */
  applySpans(spans: JournalSpan[]): Promise<{ applied: number; rejected: { seq: number; error: string }[]; restored?: string[] }>;
}

export interface DrainOptions {
  maxBatchBytes: number;
  /**
   * How long new entries wait before a pass starts once `soonBytes` are pending: passes then
   * carry many entries, so their commits (an fsync each) do not compete with every FUSE request.
   */
  delayMs: number;
  /**
   * How long they wait while fewer bytes are pending. A program that writes and fsyncs small
   * records waits on the journal's fdatasync each time; a store commit (pack fsync, SQLite
   * commit, checkpoint) every `delayMs` competes with it for the disk: measured 500 x 4 KiB
   * write+fsync 0.57-0.63 s with 500 ms against 0.72-0.91 s with 50 ms.
   */
  idleDelayMs: number;
  /** The longest wait between passes that keep failing (from `delayMs`, doubling). */
  retryMaxMs: number;
  /** Pending bytes from which passes follow at `delayMs` (bulk writes keep well below backpressure). */
  soonBytes: number;
  /**
   * True while programs are using the mount (a FUSE request in the last moments). A pass due
   * then, with less than `soonBytes` pending, waits for a pause, but not longer than
   * `busyWaitMaxMs`: its commits would compete with those programs' requests for both CPUs and
   * the disk (`stat` of 2,000 files took 0.085 s during a pass, 0.028 s without).
   */
  busy?: () => boolean;
  busyWaitMaxMs: number;
  /** Milliseconds on a clock that never steps back (tests inject theirs). */
  now: () => number;
}

const DEFAULTS: DrainOptions = { maxBatchBytes: 64 * 1024 * 1024, delayMs: 50, retryMaxMs: 5000, idleDelayMs: 500, soonBytes: 4 * 1024 * 1024, busyWaitMaxMs: 2000, now: () => performance.now() };

/**
 * The scheduling every drain shares: passes run one at a time, `delayMs` after they are kicked
 * (so each carries many entries), again at once while work remains, after `retryDelayMs` when
 * one failed, doubling up to `retryMaxMs` while they keep failing (a full disk must not spin the
 * drain or flood the log: a failure is logged when its message changes, and the recovery once); `pause()` stops them exactly as an unreachable hub would; `whenIdle()` resolves
 * when nothing is left (or the drain is paused or closed). Subclasses say what work is left and
 * run one pass.
 */
export abstract class SerialDrain {
  private running: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private timerMs = 0;
  private timerSetAt = 0;
  private pausedFlag = false;
  protected closed = false;
  private readonly idleWaiters: (() => void)[] = [];
  lastError: string | null = null;
  /** Passes failed in a row, and the message last logged for them. */
  private failures = 0;
  private loggedError: string | null = null;

  protected constructor(
    protected readonly log: (msg: string) => void,
    private readonly timing: { delayMs: number; retryDelayMs: number; retryMaxMs: number; name: string; awaitPassOnClose: boolean },
  ) {}

  /** True while entries wait to be drained. */
  protected abstract hasWork(): boolean;
  /** How long until the next pass, given what waits. */
  protected nextDelayMs(): number {
    return this.timing.delayMs;
  }
  /** Drains what it can (`'deferred'`: it chose to come back later); throws to be retried. */
  protected abstract pass(): Promise<void | 'deferred'>;

  get paused(): boolean {
    return this.pausedFlag;
  }

  pause(): void {
    this.pausedFlag = true;
  }

  resume(): void {
    this.pausedFlag = false;
    this.kick();
  }

  /** Schedules a drain pass unless one is due or running, it is paused, or nothing is waiting. */
  kick(): void {
    if (this.closed || this.pausedFlag || this.running) return;
    if (!this.hasWork()) return this.settle();
    // After failures the retry keeps its backoff: new entries do not bring it forward.
    this.schedule(this.failures > 0 ? this.retryDelay() : this.nextDelayMs());
  }

  /** Starts a pass now. */
  private run(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.closed || this.pausedFlag || this.running) return;
    if (!this.hasWork()) return this.settle();
    let failed = false;
    this.running = this.pass()
      .then((r) => {
        if (r === 'deferred') return;
        this.lastError = null;
        if (this.failures) this.log(`${this.timing.name} recovered after ${this.failures} failed pass${this.failures === 1 ? '' : 'es'}`);
        this.failures = 0;
        this.loggedError = null;
      })
      .catch((err: unknown) => {
        failed = true;
        this.failures++;
        this.lastError = err instanceof Error ? err.message : String(err);
        if (!this.closed && this.lastError !== this.loggedError) this.log(`${this.timing.name} failed, retrying: ${this.lastError}`);
        this.loggedError = this.lastError;
      })
      .finally(() => {
        this.running = null;
        if (this.closed || this.pausedFlag) return this.settle();
        if (this.hasWork()) this.schedule(failed ? this.retryDelay() : this.nextDelayMs());
        else this.settle();
      });
  }

  private retryDelay(): number {
    return Math.min(this.timing.retryMaxMs, this.timing.retryDelayMs * 2 ** Math.min(this.failures - 1, 30));
  }

  private schedule(ms: number): void {
    if (this.timer && ms < this.timerMs - (Date.now() - this.timerSetAt)) {
      // More arrived: the pass is due sooner than the one planned.
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.timer) return;
    this.timerMs = ms;
    this.timerSetAt = Date.now();
    this.timer = setTimeout(() => this.run(), ms);
  }

  /** Someone waits for the drain to finish (`whenIdle`: sync wait, shutdown). */
  protected get awaited(): boolean {
    return this.idleWaiters.length > 0;
  }

  private settle(): void {
    if (this.hasWork() && !this.pausedFlag && !this.closed) return;
    for (const w of this.idleWaiters.splice(0)) w();
  }

  /** Resolves when everything appended so far is drained (or the drain is paused or closed). */
  whenIdle(): Promise<void> {
    return new Promise((resolve) => {
      this.idleWaiters.push(resolve);
      this.run();
      this.settle();
    });
  }

  /** Stops scheduling; waits for a running pass unless that could wait for a peer that is gone. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.timing.awaitPassOnClose) await this.running;
    this.settle();
  }
}

/**
 * Local mode's drain: commits durable journal entries into the embedded store in order, in
 * batches (one SQLite transaction each), then advances the journal's commit watermark. Only
 * durable entries are drained, so a journal tail lost to power failure can never leave the store
 * ahead of the journal's sequence numbers. `pause()` stops it exactly as an unreachable hub would.
 */
export class LocalDrain extends SerialDrain {
  private readonly opts: DrainOptions;

  constructor(
    private readonly journal: DrainJournal,
    private readonly store: DrainStore,
    private readonly onCommitted: (seq: number) => void,
    log: (msg: string) => void,
    opts: Partial<DrainOptions> = {},
  ) {
    const o = { ...DEFAULTS, ...opts };
    super(log, { delayMs: o.delayMs, retryDelayMs: o.delayMs, retryMaxMs: o.retryMaxMs, name: 'drain', awaitPassOnClose: true });
    this.opts = o;
  }

  /** Entries appended but not yet in the store. */
  get backlog(): number {
    return Math.max(0, this.journal.lastSeq - Math.max(this.store.appliedSeq, this.journal.committedSeq));
  }

  protected hasWork(): boolean {
    return this.journal.lastSeq > this.store.appliedSeq;
  }

  protected override nextDelayMs(): number {
    return this.journal.pending().pendingBytes >= this.opts.soonBytes ? this.opts.delayMs : this.opts.idleDelayMs;
  }

  /** When a pass first found programs busy, while it waits for a pause. */
  private busySince: number | null = null;

  /** A pass due while programs are busy (and nothing urges it) comes back after `idleDelayMs`. */
  private waitsForPause(): boolean {
    if (!this.opts.busy?.() || this.awaited || this.closed) return false;
    if (this.journal.pending().pendingBytes >= this.opts.soonBytes) return false;
    const now = this.opts.now();
    this.busySince ??= now;
    return now - this.busySince < this.opts.busyWaitMaxMs;
  }

  protected async pass(): Promise<void | 'deferred'> {
    if (this.waitsForPause()) return 'deferred';
    this.busySince = null;
    for (;;) {
      if (this.paused || this.closed) return;
      const from = Math.max(this.store.appliedSeq, this.journal.committedSeq) + 1;
      const upTo = this.journal.durableSeq;
      if (upTo < from) return;
      const spans = this.journal.spans(from, upTo, this.opts.maxBatchBytes);
      const last = spans[spans.length - 1]?.lastSeq;
      if (last === undefined) return;
      const r = await this.store.applySpans(spans);
      for (const x of r.rejected) this.log(`store refused journal entry ${x.seq}: ${x.error}`);
      if (r.restored?.length) this.log(`the store's copy of ${r.restored.length} chunk(s) was damaged or missing on disk (${r.restored.slice(0, 3).join(', ')}${r.restored.length > 3 ? ', …' : ''}): stored again from new writes of the same data; run \`aether store verify\` for what else is damaged`);
      await this.journal.commit(last);
      this.lastError = null;
      this.onCommitted(last);
    }
  }
}
