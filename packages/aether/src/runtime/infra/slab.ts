/**
 * Hands out buffers as slices of large slabs: one allocation per slab instead of one per buffer.
 * Buffers above a few hundred KiB get their memory from mmap and give it back with munmap when
 * collected, and each one adds to V8's external-memory pressure; a 128 KiB FUSE write used to cost
 * two of them (the op payload and the journal frame), and garbage collection took a fifth of the
 * mount's time on sequential writes. A slab is freed once every slice cut from it is dropped.
 */
export class SlabAllocator {
  private slab = Buffer.allocUnsafe(0);
  private used = 0;

  /** `slabBytes`: size of each slab; requests above a quarter of it get a buffer of their own. */
  constructor(private readonly slabBytes: number) {}

  alloc(bytes: number): Buffer {
    if (bytes > this.slabBytes / 4) return Buffer.allocUnsafe(bytes);
    if (this.used + bytes > this.slab.length) {
      this.slab = Buffer.allocUnsafe(this.slabBytes);
      this.used = 0;
    }
    const out = this.slab.subarray(this.used, this.used + bytes);
    this.used += (bytes + 7) & ~7; // the next slice starts 8-byte aligned
    return out;
  }
}
