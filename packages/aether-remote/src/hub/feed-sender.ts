import { sendSnapshot, type SnapshotOut } from './snapshot.js';
import type { HubStorage } from './storage.js';

export interface FeedSource {
  readonly storage: HubStorage;
  readonly pageRows: number;
  onSnapshot(): void;
}

/**
 * Sends one connection the changefeed from its cursor: a snapshot first when the cursor is older
 * than what the feed retains, then every entry in order, a page at a time, waiting for the socket
 * to drain between pages so that a slow client holds back only itself. `wake()` after a commit.
 */
export class FeedSender {
  private cursor = 0;
  /** The client holds no state at all (cursor 0): not even the root's attributes. */
  private needsSnapshot = false;
  private active = false;
  private running = false;
  private again = false;
  /** Bumped by each start: a page being sent for an earlier one stops. */
  private generation = 0;

  constructor(
    private readonly source: FeedSource,
    private readonly out: SnapshotOut,
    private readonly onError: (err: unknown) => void,
  ) {}

  /** Sends from `cursor` (the last hub sequence the client applied). */
  start(cursor: number): void {
    this.generation++;
    this.cursor = cursor;
    this.needsSnapshot = cursor === 0;
    this.active = true;
    this.wake();
  }

  stop(): void {
    this.active = false;
  }

  wake(): void {
    if (!this.active) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    void this.run()
      .catch((err: unknown) => this.onError(err))
      .finally(() => (this.running = false));
  }

  private async run(): Promise<void> {
    do {
      this.again = false;
      await this.catchUp();
    } while (this.again && this.active && this.out.open);
  }

  private async catchUp(): Promise<void> {
    while (this.active && this.out.open) {
      // A follow that comes meanwhile (another cursor) starts over: what was read or being sent is for the old one.
      const generation = this.generation;
      const current = (): boolean => generation === this.generation;
      // The floor and the rows come from one read, so a prune in between cannot leave a gap.
      const { floor, rows } = await this.source.storage.feedPage(this.cursor, this.source.pageRows);
      if (!current()) continue;
      if (this.needsSnapshot || this.cursor < floor) {
        this.source.onSnapshot();
        const seq = await sendSnapshot(await this.source.storage.openSnapshot(), this.out, this.source.pageRows, current);
        if (!current()) continue;
        if (seq === null) return;
        this.cursor = seq;
        this.needsSnapshot = false;
        continue;
      }
      if (rows.length === 0) return;
      for (const row of rows) {
        // The client's window: it may wait here for credit, and a new follow may come meanwhile.
        await this.out.feedRoom();
        if (generation !== this.generation || !this.active || !this.out.open) break;
        if (row.hub_seq !== this.cursor + 1) throw new Error(`changefeed gap: after ${this.cursor} comes ${row.hub_seq}`);
        this.out.sendFeed(`{"t":"entry","entry":${row.entry}}`);
        this.cursor = row.hub_seq;
      }
      await this.out.drain();
    }
  }
}
