/**
 * An fdatasync of the journal's files run outside the journal: the FUSE binding answers fsync(2)
 * in its own threads, without a round trip through the event loop (FUSE.md, "fsync answered in
 * the binding"). Such an answer is correct only while every record the mount answered for is in
 * a file it syncs, and only where an fsync(2) need not move the journal's own durable mark. It
 * opens each file again for itself, so a writeback error reaches both it and the journal.
 */
export interface OutsideSync {
  /**
   * A segment file records go into from now on (handed over before the first record is written).
   * False: it could not take it, and must not answer again.
   */
  add(fd: number): boolean;
  /** Taken back before the file is closed. */
  remove(fd: number): void;
  /**
   * Whether it may answer now: under `interval` and `immediate` and while no journal write has
   * failed. Not under `manual`, where an fsync(2) is what lets the drain take the entries.
   */
  allow(on: boolean): void;
}
