const ignore = (): void => undefined;

/**
 * Runs a task at most once at a time; callers that arrive while it runs share the next run.
 * This is group commit: however many appends wait for durability, at most one fsync runs and
 * one more is queued, and each run covers everything that was ready when it started.
 */
export class GroupRun<T> {
  private running: Promise<T> | null = null;
  private next: Promise<T> | null = null;

  constructor(private readonly task: () => Promise<T>) {}

  run(): Promise<T> {
    // `next` is checked first: between the end of a run and the start of the queued one, a new
    // caller must join the queued run rather than start a second one beside it.
    if (this.next) return this.next;
    if (!this.running) return this.start();
    this.next = this.running.then(ignore, ignore).then(() => {
      this.next = null;
      return this.start();
    });
    return this.next;
  }

  /** Resolves once no run is in progress or queued (whatever their outcome). */
  async idle(): Promise<void> {
    while (this.running || this.next) await (this.next ?? this.running)?.then(ignore, ignore);
  }

  private start(): Promise<T> {
    const p = this.task();
    this.running = p;
    const done = (): void => {
      if (this.running === p) this.running = null;
    };
    p.then(done, done);
    return p;
  }
}
