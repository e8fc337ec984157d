/** What the cache tells the backpressure coordinator, mirroring `JournalPendingSource`. */
export interface CachePressure {
  dirtyBytes: number;
  /** Free bytes of the file system holding the cache; null until first measured. */
  diskFreeBytes: number | null;
}

export interface CachePressureSource {
  cachePressure(): CachePressure;
  /** Calls `listener` after every change of dirty bytes or free space; returns an unsubscribe. */
  onCachePressureChange(listener: () => void): () => void;
}
