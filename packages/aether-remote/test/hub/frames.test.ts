import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeChunkFrame, encodeChunkFrame, parseClientFrame, parseJsonObject, sha256Hex } from '../../src/protocol/frames.js';
import { ProtocolViolation, unsafeNameReason } from '../../src/protocol/wire-ops.js';

const violation = (code: string) => (e: unknown) => e instanceof ProtocolViolation && e.code === code;
const batch = (op: unknown) => ({ t: 'batch', id: 1, baseSeq: 0, upToSeq: 1, entries: [{ seq: 1, op }] });
const mk = (name: unknown) => ({ t: 'mknode', parent: 1, name, ino: 2 ** 32 + 1, kind: 'file', mode: 0o644, uid: 0, gid: 0, timeMs: 1 });

describe('frame parsing', () => {
  it('unsafe names are refused: .., ., /, NUL, empty, lone surrogates, > 255 bytes', () => {
    for (const bad of ['..', '.', 'a/b', '/', 'a\0b', '', 'x\ud800', 'n'.repeat(256)]) {
      assert.notEqual(unsafeNameReason(bad), null, JSON.stringify(bad));
      assert.throws(() => parseClientFrame(batch(mk(bad)), 10), violation('UNSAFE_NAME'), JSON.stringify(bad));
    }
    for (const good of ['a', '...', '.hidden', 'é'.repeat(127), 'a b']) assert.equal(unsafeNameReason(good), null, good);
    assert.throws(() => parseClientFrame(batch({ t: 'rename', parent: 1, name: 'a', ino: 5, newParent: 1, newName: '../x', dstIno: 0, flags: 0, timeMs: 1 }), 10), violation('UNSAFE_NAME'));
    assert.throws(() => parseClientFrame(batch({ t: 'unlink', parent: 1, name: 'a/..', ino: 5, timeMs: 1 }), 10), violation('UNSAFE_NAME'));
  });

  it('ops are checked field by field and copied without unknown fields', () => {
    const f = parseClientFrame(batch({ ...mk('ok'), junk: 'x'.repeat(10) }), 10);
    assert.deepEqual(f && f.t === 'batch' ? f.entries[0]?.op : null, mk('ok'));
    assert.throws(() => parseClientFrame(batch({ t: 'write', ino: 5, offset: 0, data: 'x', timeMs: 1 }), 10), violation('BAD_OP'));
    assert.throws(() => parseClientFrame(batch({ ...mk('a'), mode: 0o100644 }), 10), violation('BAD_OP'));
    assert.throws(() => parseClientFrame(batch({ ...mk('a'), ino: -1 }), 10), violation('BAD_OP'));
    assert.throws(() => parseClientFrame(batch({ t: 'content', ino: 5, size: 10, blocks: [[1, 'a'.repeat(64)]], timeMs: 1 }), 10), violation('BAD_OP'));
    assert.throws(() => parseClientFrame(batch({ t: 'content', ino: 5, size: 10, blocks: [[0, 'A'.repeat(64)]], timeMs: 1 }), 10), violation('BAD_OP'));
  });

  it('batches: increasing seqs up to upToSeq, bounded length', () => {
    const two = { t: 'batch', id: 1, baseSeq: 0, upToSeq: 5, entries: [{ seq: 3, op: mk('a') }, { seq: 3, op: mk('b') }] };
    assert.throws(() => parseClientFrame(two, 10), violation('MALFORMED'));
    assert.throws(() => parseClientFrame({ ...batch(mk('a')), upToSeq: 0 }, 10), violation('MALFORMED'));
    assert.throws(() => parseClientFrame({ t: 'batch', id: 1, baseSeq: 0, upToSeq: 9, entries: [1, 2, 3].map((seq) => ({ seq, op: mk(`n${seq}`) })) }, 2), violation('MALFORMED'));
    assert.throws(() => parseClientFrame({ ...batch(mk('a')), fromSeq: 2 }, 10), violation('MALFORMED'));
    assert.throws(() => parseClientFrame({ ...batch(mk('a')), fromSeq: -1 }, 10), violation('MALFORMED'));
    assert.throws(() => parseClientFrame({ ...batch(mk('a')), fromSeq: 0 }, 10), violation('MALFORMED'));
    assert.throws(() => parseClientFrame({ t: 'batch', id: 1, baseSeq: 0, upToSeq: 5, fromSeq: 4, entries: [{ seq: 3, op: mk('a') }] }, 10), violation('MALFORMED'));
    assert.deepEqual(parseClientFrame({ ...batch(mk('a')), fromSeq: 1 }, 10), { ...batch(mk('a')), fromSeq: 1 });
    const kept = (viewKept: unknown) => ({ t: 'batch', id: 1, baseSeq: 0, upToSeq: 1, entries: [{ seq: 1, viewKept, op: mk('a') }] });
    assert.deepEqual(parseClientFrame(kept([[1, 'g']]), 10), kept([[1, 'g']]));
    const many = Array.from({ length: 65 }, (_, i) => [1, `n${i}`]);
    for (const bad of [true, [], [[1]], [[-1, 'g']], [[1, '']], [[1, 'a/b']], [[1, '..']], many]) assert.throws(() => parseClientFrame(kept(bad), 10), violation('MALFORMED'));
  });

  it('non-JSON, non-objects and unknown types', () => {
    assert.throws(() => parseJsonObject('{nope'), violation('MALFORMED'));
    assert.throws(() => parseJsonObject('[1]'), violation('MALFORMED'));
    assert.equal(parseClientFrame({ t: 'explode' }, 10), null);
  });

  it('chunk frames carry their hash and are verified', () => {
    const data = Buffer.from('hello chunk');
    const frame = encodeChunkFrame(sha256Hex(data), data);
    const back = decodeChunkFrame(frame);
    assert.ok('hash' in back && back.data.equals(data) && back.hash === sha256Hex(data));
    frame[frame.length - 1] = (frame[frame.length - 1] ?? 0) ^ 1;
    assert.match((decodeChunkFrame(frame) as { error: string }).error, /does not match/);
    assert.match((decodeChunkFrame(Buffer.from([1, 2, 3])) as { error: string }).error, /shorter/);
    const big = Buffer.alloc(65_537);
    assert.match((decodeChunkFrame(encodeChunkFrame(sha256Hex(big), big)) as { error: string }).error, /larger/);
  });
});
