import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeRecord, encodeRecord, encodeRecordHeader, FrameArena, maxClaimAfter, RECORD_HEADER_BYTES, RECORD_PAYLOAD_BYTES_MAX, recordBytes } from '../../src/runtime/journal/record.js';
import { payloadFor } from './helpers.js';

describe('record framing', () => {
  it('round-trips sequence, timestamp, type and payload', () => {
    const payload = payloadFor(42);
    const frame = encodeRecord(2 ** 40 + 7, 1_700_000_000_123, 65535, 2 ** 40 + 3, payload);
    assert.equal(frame.length, recordBytes(payload.length));
    const r = decodeRecord(frame, 0, frame.length);
    assert.equal(r.kind, 'record');
    if (r.kind !== 'record') return;
    assert.equal(r.seq, 2 ** 40 + 7);
    assert.equal(r.timestampMs, 1_700_000_000_123);
    assert.equal(r.type, 65535);
    assert.equal(r.durableSeq, 2 ** 40 + 3);
    assert.deepEqual(r.payload, payload);
    assert.equal(r.bytes, frame.length);
  });

  it('an empty payload is a valid record of header size', () => {
    const frame = encodeRecord(1, 0, 0, 0, Buffer.alloc(0));
    assert.equal(frame.length, RECORD_HEADER_BYTES);
    assert.equal(decodeRecord(frame, 0, frame.length).kind, 'record');
  });

  it('the payload is copied: changing the caller buffer afterwards does not change the record', () => {
    const payload = Buffer.from('abc');
    const frame = encodeRecord(1, 0, 1, 0, payload);
    payload[0] = 0x7a;
    const r = decodeRecord(frame, 0, frame.length);
    assert.ok(r.kind === 'record' && r.payload.toString() === 'abc');
  });

  it('every single flipped bit anywhere in a record is detected', () => {
    const frame = encodeRecord(9, 123456, 3, 4, payloadFor(9, 40));
    for (let i = 0; i < frame.length; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const bad = Buffer.from(frame);
        bad[i] = (bad[i] as number) ^ (1 << bit);
        const r = decodeRecord(bad, 0, bad.length);
        assert.notEqual(r.kind, 'record', `flip of bit ${bit} in byte ${i} went unnoticed`);
      }
    }
  });

  it('a cut record is short, naming the bytes it needs', () => {
    const frame = encodeRecord(1, 0, 1, 0, Buffer.alloc(100, 1));
    assert.deepEqual(decodeRecord(frame, 0, 10), { kind: 'short', needBytes: RECORD_HEADER_BYTES });
    assert.deepEqual(decodeRecord(frame, 0, frame.length - 1), { kind: 'short', needBytes: frame.length });
  });

  it('a length above the limit is bad at once, without waiting for more bytes', () => {
    const frame = encodeRecord(1, 0, 1, 0, Buffer.alloc(8));
    frame.writeUInt32LE(RECORD_PAYLOAD_BYTES_MAX + 1, 0);
    assert.equal(decodeRecord(frame, 0, frame.length).kind, 'bad');
  });

  it('zeros are not a record', () => {
    const zeros = Buffer.alloc(4096);
    assert.equal(decodeRecord(zeros, 0, zeros.length).kind, 'bad');
  });

  it('rejects types outside 0..65535 as a programming error', () => {
    assert.throws(() => encodeRecord(1, 0, 65536, 0, Buffer.alloc(0)));
    assert.throws(() => encodeRecord(1, 0, -1, 0, Buffer.alloc(0)));
    assert.throws(() => encodeRecord(1, 0, 1.5, 0, Buffer.alloc(0)));
  });

  it('a record without a durability claim reads as claiming 0, and a claim must lie below its own sequence', () => {
    const none = decodeRecord(encodeRecord(7, 0, 1, 0, Buffer.alloc(1)), 0, 33);
    assert.ok(none.kind === 'record' && none.durableSeq === 0);
    const some = decodeRecord(encodeRecord(7, 0, 1, 6, Buffer.alloc(1)), 0, 33);
    assert.ok(some.kind === 'record' && some.durableSeq === 6);
    assert.throws(() => encodeRecord(7, 0, 1, 7, Buffer.alloc(1)), 'a record cannot claim itself durable');
  });

  it('maxClaimAfter finds the highest claim of valid later records behind garbage, and nothing in garbage alone', () => {
    const a = encodeRecord(5, 0, 1, 2, payloadFor(5, 50));
    const b = encodeRecord(6, 0, 1, 4, payloadFor(6, 50));
    const garbage = Buffer.alloc(37, 0xab);
    const buf = Buffer.concat([garbage, a, b]);
    assert.equal(maxClaimAfter(buf, 0, buf.length, 4), 4);
    assert.equal(maxClaimAfter(buf, 0, buf.length, 5), 4, 'only records above the last good sequence count');
    assert.equal(maxClaimAfter(Buffer.concat([garbage, a]), 0, garbage.length + a.length, 4), 2);
    assert.equal(maxClaimAfter(buf, 0, buf.length, 6), 0);
    assert.equal(maxClaimAfter(Buffer.alloc(8192), 0, 8192, 0), 0);
  });
});

describe('frame arena', () => {
  it('cuts 8-byte aligned frames from shared slabs, and gives large frames their own buffer', () => {
    const arena = new FrameArena();
    const a = arena.alloc(4129);
    const b = arena.alloc(10);
    assert.equal(a.buffer, b.buffer, 'small frames share a slab');
    assert.equal(b.byteOffset - a.byteOffset, 4136);
    assert.equal(b.byteOffset % 8, 0);
    assert.equal(arena.alloc(128 * 1024 + 40).buffer, b.buffer, "a 128 KiB write's frame shares the slab too");
    assert.notEqual(arena.alloc(3 * 1024 * 1024).buffer, b.buffer, 'past a quarter of a slab: a buffer of its own');
    const frames = Array.from({ length: 2100 }, () => arena.alloc(4096));
    assert.notEqual(frames[0]?.buffer, frames[2099]?.buffer, 'a full slab (8 MiB) is replaced');
    const payload = Buffer.from('in the arena');
    const header = encodeRecordHeader(3, 9, 1, 2, payload, arena);
    assert.equal(header.length, RECORD_HEADER_BYTES, 'only the header is cut from the arena');
    const r = decodeRecord(Buffer.concat([header, payload]), 0, 44);
    assert.ok(r.kind === 'record' && r.payload.toString() === 'in the arena');
    assert.deepEqual(Buffer.concat([header, payload]), encodeRecord(3, 9, 1, 2, payload), 'the same bytes as a whole record');
  });
});
