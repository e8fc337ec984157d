import type { Ino } from '../tree/ops.js';

/** What the file system needs of the journal. */
export interface JournalPort {
  /** Appends a record; the sequence number is assigned synchronously, in call order. */
  append(type: number, payload: Buffer): { seq: number; durable: Promise<void> };
  /** Makes everything appended so far durable (reason `manual`: `fsync(2)`, `JOURNAL FLUSH`). */
  flush(): Promise<void>;
}

/** What the file system needs of the cache. Dirty data is tagged with its journal sequence. */
export interface CachePort {
  /** Throws an error with errno ENOSPC, changing nothing, when `bytes` more dirty data would pass the quota. */
  checkDirtyQuota(ino: Ino, offset: number, bytes: number): void;
  write(ino: Ino, offset: number, data: Buffer, seq: number): void;
  /** Bytes held for [offset, offset+length): filled ranges come from the cache, `holes` must be fetched. */
  read(ino: Ino, offset: number, length: number): { data: Buffer; holes: [start: number, end: number][] };
  putClean(ino: Ino, offset: number, data: Buffer): void;
  truncate(ino: Ino, size: number, seq: number): void;
  remove(ino: Ino): void;
}

/** The backpressure gate writers pass. */
export interface GatePort {
  readonly isOpen: boolean;
  admit(): Promise<void>;
}
