import type { Database } from 'better-sqlite3';
import { FEED_CHUNKS_SQLITE } from './schema.js';
import type { ChunkReclaim, HubStorage } from './storage.js';

/**
 * Notes in `hub_dying` the chunks neither the tree nor a retained changefeed entry names (since
 * `nowMs` for those not noted before), forgets the ones named again, and marks those noted at
 * least `graceMs` ago as expired: the store's space reclaim then drops them (HUB_EXTENSION's
 * `liveChunks`). Embedded store, inside a transaction.
 */
export function markDyingChunks(db: Database, nowMs: number, graceMs: number): void {
  db.exec('CREATE TEMP TABLE IF NOT EXISTS hub_referenced (hash TEXT PRIMARY KEY) WITHOUT ROWID; DELETE FROM temp.hub_referenced');
  db.exec(`INSERT OR IGNORE INTO temp.hub_referenced SELECT hash FROM blocks UNION ${FEED_CHUNKS_SQLITE}`);
  db.exec('DELETE FROM hub_dying WHERE hash IN (SELECT hash FROM temp.hub_referenced) OR hash NOT IN (SELECT hash FROM chunks)');
  db.prepare('INSERT OR IGNORE INTO hub_dying (hash, since_ms) SELECT hash, ? FROM chunks WHERE hash NOT IN (SELECT hash FROM temp.hub_referenced)').run(nowMs);
  db.prepare('UPDATE hub_dying SET expired = (since_ms <= ?)').run(nowMs - graceMs);
  db.exec('DELETE FROM temp.hub_referenced');
}

/** Chunks a commit names again are no longer dying (embedded store, inside the commit's transaction). */
export function unmarkDying(db: Database, hashes: readonly string[]): void {
  if (hashes.length === 0) return;
  const del = db.prepare('DELETE FROM hub_dying WHERE hash = ?');
  for (const h of hashes) del.run(h);
}

/** How often the hub looks for chunks to reclaim: a quarter of the grace period, within [1 s, 10 min]. */
export function reclaimIntervalMs(graceMs: number): number {
  return Math.min(600_000, Math.max(1000, Math.floor(graceMs / 4)));
}

/**
 * Gives back the space of chunks no mount can need any more: those neither the committed tree nor
 * a retained changefeed entry has named for the grace period. A mount may still be fetching a
 * chunk the tree named when it began (a snapshot, or an entry since pruned): within the grace
 * period it is there, after it the mount asks for a fresh snapshot (PROTOCOL.md). Runs every
 * `reclaimIntervalMs(graceMs)` while anything was committed since the last run or chunks are dying.
 */
export class ChunkReclaimer {
  private readonly timer: NodeJS.Timeout;
  private running: Promise<void> | undefined;
  private commitsSince = 1;
  private dying = 0;

  constructor(
    private readonly storage: HubStorage,
    private readonly graceMs: number,
    private readonly nowMs: () => number,
    private readonly done: (r: ChunkReclaim) => void,
    private readonly failed: (err: unknown) => void,
  ) {
    this.timer = setInterval(() => void this.run(), reclaimIntervalMs(graceMs));
    this.timer.unref();
  }

  committed(): void {
    this.commitsSince++;
  }

  /** One run now (unless one is running, or there is nothing new to look at). */
  run(): Promise<void> {
    if (this.running || (this.commitsSince === 0 && this.dying === 0)) return this.running ?? Promise.resolve();
    this.commitsSince = 0;
    this.running = this.storage
      .reclaimChunks(this.nowMs(), this.graceMs)
      .then((r) => {
        this.dying = r.dying;
        this.done(r);
      }, (err: unknown) => {
        // Tried again at the next interval.
        this.commitsSince++;
        this.failed(err);
      })
      .finally(() => (this.running = undefined));
    return this.running;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }
}
