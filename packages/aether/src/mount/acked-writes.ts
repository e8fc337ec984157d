import type { AckedWrites } from './fuse-binding.js';

/** What decides whether the binding may acknowledge writes before JS takes them. */
export interface AckedWriteConditions {
  /** Writes stop (the mount is stopping). */
  readonly stopped: boolean;
  /** The journal's sync policy: under `immediate` a write returns only once durable. */
  policy(): 'interval' | 'manual' | 'immediate';
  /** The journal has failed: nothing more can be appended. */
  journalFailed(): boolean;
  /** Room before backpressure engages (bytes and journal entries; 0 while engaged). */
  room(): { bytes: number; entries: number };
  /** Room under the cache's dirty quota, in bytes. */
  dirtyRoom(): number;
}

/** The most writes the binding holds at once (AETHER_ACKED_ENTRIES in the patch). */
export const ACKED_WRITES_MAX = 256;

/**
 * Opens and closes the binding's window of acknowledged writes (FUSE.md "Writes acknowledged by
 * the binding"). A write it acknowledges can no longer be refused, so the window is open only
 * while everything that could refuse or hold it has room for a whole window: not `immediate`,
 * the journal healthy, writes not stopping, the gate open with room below every high-water mark
 * for `windowBytes` and 256 entries, and the dirty quota with room for `windowBytes`. Backpressure
 * therefore engages where it did, give or take one window. `refresh` runs after anything that
 * changes one of these (each append, each change of cache pressure or of the gate, a reload).
 */
export class AckedWriteWindow {
  private open = false;
  private stopped = false;

  constructor(
    private readonly binding: AckedWrites,
    private readonly conditions: AckedWriteConditions,
    readonly windowBytes: number,
  ) {}

  get isOpen(): boolean {
    return this.open;
  }

  refresh(): void {
    const c = this.conditions;
    let want = !this.stopped && this.windowBytes > 0 && !c.stopped && c.policy() !== 'immediate' && !c.journalFailed();
    if (want) {
      const room = c.room();
      want = room.bytes >= this.windowBytes && room.entries >= ACKED_WRITES_MAX && c.dirtyRoom() >= this.windowBytes;
    }
    if (want === this.open) return;
    this.open = want;
    this.binding.setWindow(want ? this.windowBytes : 0);
  }

  /** Hands every write waiting now to JS (before a flush that must cover them). */
  drain(): void {
    this.binding.drain();
  }

  /** Acknowledges no more and hands every waiting write to JS (before writes stop, and after the unmount). */
  close(): void {
    this.stopped = true;
    this.open = false;
    this.binding.setWindow(0);
    this.binding.drain();
  }
}
