/**
 * The bridge drain's order around an acknowledged batch: what must be on disk before the journal
 * lets go of the batch (kept base versions) is saved first. The hub and the replica are stand-ins
 * here: the order within one pass is what is tested; mount tests run the real parts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encodeOp, OP_RECORD_TYPE, ROOT_INO } from '@aether/core/tree/ops';
import { MemoryMeta } from '@aether/core/tree/meta';
import type { DrainJournal } from '@aether/core/mount/drain';
import { BridgeDrain, type BridgeDrainDeps } from '../../src/mount/bridge-drain.js';
import type { Resolution } from '../../src/protocol/frames.js';

const copy: Resolution = { jseq: 1, kind: 'conflict-copy', ino: 5, copyIno: 2, parent: ROOT_INO, name: 'f.conflict' };

/** `ack`: what the hub answers (default: committed, with the copy); `own`: the resolutions of this mount's own changefeed entries. */
function setup(beforeCommit: (upTo: number, rs: readonly Resolution[]) => Promise<void>, opts: { ack?: { hubSeq: number | null; resolutions: Resolution[] }; own?: Map<number, Resolution[]> } = {}) {
  const events: string[] = [];
  const payload = encodeOp({ t: 'write', ino: 5, offset: 0, data: Buffer.from('X'), timeMs: 1 });
  let committedSeq = 0;
  const journal: DrainJournal = {
    lastSeq: 1,
    durableSeq: 1,
    get committedSeq() {
      return committedSeq;
    },
    spans: () => [],
    async *entries({ fromSeq = 1 }) {
      if (fromSeq <= 1) yield { seq: 1, type: OP_RECORD_TYPE, payload };
    },
    commit: async (seq) => {
      events.push('journal commit');
      committedSeq = seq;
    },
    pending: () => ({ pendingBytes: committedSeq < 1 ? payload.length : 0, pendingEntries: committedSeq < 1 ? 1 : 0 }),
  };
  const shipped = new MemoryMeta();
  shipped.putInode({ ino: ROOT_INO, kind: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0, nlink: 2, atimeMs: 0, mtimeMs: 0, ctimeMs: 0 });
  const deps = {
    journal,
    client: { upload: async () => opts.ack ?? { hubSeq: 1, resolutions: [copy] }, welcome: { hubSeq: 1 } },
    replica: { cursor: 0, ownJournalSeq: 1, waitFor: async () => undefined, noteOwnJournalSeq: async () => undefined, ownResolutions: () => opts.own ?? new Map(), dropOwnResolutions: async () => undefined },
    contentOf: async () => Buffer.from('X'),
    shipped,
    beforeCommit,
    onCommitted: () => events.push('committed'),
    onResolutions: () => events.push('resolutions'),
    log: (line: string) => events.push(`log: ${line.split(':')[0]}`),
  } as unknown as BridgeDrainDeps;
  return { events, drain: new BridgeDrain(deps), committed: () => committedSeq };
}

describe('BridgeDrain: an acknowledged batch', () => {
  it('waits for beforeCommit (given the resolutions) before the journal commits it', async () => {
    let t: ReturnType<typeof setup> | undefined = undefined;
    t = setup(async (upTo, rs) => {
      t!.events.push(`before commit up to ${upTo}: ${rs.map((r) => r.kind).join()}`);
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(t!.committed(), 0, 'the journal still holds the batch');
      t!.events.push('before commit done');
    });
    t.drain.kick();
    await t.drain.whenIdle();
    await t.drain.close();
    assert.deepEqual(t.events, ['before commit up to 1: conflict-copy', 'before commit done', 'journal commit', 'committed', 'resolutions']);
  });

  it('a duplicate ack with the resolutions, which its own changefeed entry also had: each is acted on once', async () => {
    const got: string[] = [];
    const t = setup(async (_upTo, rs) => void got.push(...rs.map((r) => `${r.jseq} ${r.kind}`)), { ack: { hubSeq: null, resolutions: [copy] }, own: new Map([[1, [{ ...copy }]]]) });
    t.drain.kick();
    await t.drain.whenIdle();
    await t.drain.close();
    assert.deepEqual(got, ['1 conflict-copy']);
  });

  it('keeps the batch in the journal when beforeCommit fails, and commits it on a later pass', async () => {
    let calls = 0;
    let t: ReturnType<typeof setup> | undefined = undefined;
    t = setup(async () => {
      calls++;
      t!.events.push(`before commit ${calls}, journal committed up to ${t!.committed()}`);
      if (calls === 1) throw new Error('disk full');
    });
    t.drain.kick();
    await t.drain.whenIdle();
    await t.drain.close();
    assert.deepEqual(
      t.events.filter((e) => !e.startsWith('log')),
      ['before commit 1, journal committed up to 0', 'before commit 2, journal committed up to 0', 'journal commit', 'committed', 'resolutions'],
    );
  });
});
