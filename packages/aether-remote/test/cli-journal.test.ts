import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, truncateSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Journal } from '@aether/core/runtime/journal/index';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');
const bin = join(repo, 'packages', 'aether-remote', 'bin', 'aether.js');

function aether(args: string[], env: Record<string, string> = {}) {
  const cwd = mkdtempSync(join(tmpdir(), 'aether-cli-journal-'));
  const r = spawnSync(process.execPath, [bin, ...args], { cwd, env: { PATH: process.env.PATH ?? '', ...env }, encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** A state directory whose journal holds `n` entries of 100 bytes (4 KiB segments), `committed` of them committed. */
async function stateWith(n: number, committed: number, opts: { close?: boolean } = {}): Promise<string> {
  const state = mkdtempSync(join(tmpdir(), 'aether-cli-state-'));
  const journal = await Journal.open({ dir: join(state, 'journal'), sync: { policy: 'manual', intervalMs: 5, backlogBytes: 0 }, segmentBytes: 4096 });
  for (let i = 0; i < n; i++) await journal.append(1, Buffer.alloc(100, i));
  if (committed > 0) await journal.commit(committed);
  if (opts.close ?? true) await journal.close();
  else await journal.idle();
  return state;
}

describe('aether journal inspect', () => {
  it('prints the journal as JSON without a running mount', async () => {
    const state = await stateWith(50, 10);
    const r = aether(['journal', 'inspect', '--state-dir', state]);
    assert.equal(r.code, 0, r.err);
    assert.equal(r.err, '');
    const j = JSON.parse(r.out) as Record<string, unknown>;
    assert.equal(j.journal_dir, join(state, 'journal'));
    assert.equal(j.first_seq, 1);
    assert.equal(j.last_seq, 50);
    assert.equal(j.committed_seq, 10);
    assert.equal(j.pending_entries, 40);
    assert.equal(j.pending_bytes, 40 * (32 + 100));
    assert.equal(typeof j.oldest_age_seconds, 'number');
    assert.deepEqual(j.torn_tail, { found: false });
    assert.ok(Array.isArray(j.segments) && j.segments.length === 2);
  });

  it('finds the state directory through the configuration when --state-dir is not given', async () => {
    const state = await stateWith(3, 0);
    const r = aether(['journal', 'inspect', '--json'], { AFS_AETHER_STATE_DIR: state });
    assert.equal(r.code, 0, r.err);
    assert.equal((JSON.parse(r.out) as { last_seq: number }).last_seq, 3);
  });

  it('reports a torn tail and leaves it in place', async () => {
    const state = await stateWith(5, 0, { close: false });
    const seg = join(state, 'journal', '00000000000000000001.wal');
    truncateSync(seg, statSync(seg).size - 3);
    const before = readFileSync(seg);
    const r = aether(['journal', 'inspect', '--state-dir', state]);
    assert.equal(r.code, 0, r.err);
    const j = JSON.parse(r.out) as { last_seq: number; torn_tail: { found: boolean; reason: string } };
    assert.equal(j.last_seq, 4);
    assert.deepEqual([j.torn_tail.found, j.torn_tail.reason], [true, 'incomplete record']);
    assert.deepEqual(readFileSync(seg), before);
  });

  it('a missing directory is one line and exit 2, no stack trace', () => {
    const r = aether(['journal', 'inspect', '--state-dir', '/nonexistent/aether-state']);
    assert.equal(r.code, 2);
    assert.equal(r.out, '');
    assert.equal(r.err, 'aether: no journal directory at /nonexistent/aether-state/journal\n');
  });

  it('a damaged journal is one line naming the stable code, exit 1', async () => {
    const state = await stateWith(100, 0);
    unlinkSync(join(state, 'journal', '00000000000000000031.wal')); // 30 records a segment
    const r = aether(['journal', 'inspect', '--state-dir', state]);
    assert.equal(r.code, 1);
    assert.equal(r.out, '');
    assert.match(r.err, /^aether: journal .*: uncommitted entries 31\.\.60 are missing .* \(JOURNAL_SEGMENT_MISSING\)\n$/);
  });
});
