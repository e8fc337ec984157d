/**
 * fsync(2) answered in the binding's FUSE thread (FUSE.md "fsync answered in the binding"): with
 * an fdatasync of the journal's files, only where that is correct, counted like any fsync.
 */
import assert from 'node:assert/strict';
import { closeSync, constants, fsyncSync, openSync, readdirSync, readFileSync, readlinkSync, writeFileSync, writeSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { metric, startMount, status, stopAll, tempDir, type MountProcess } from './harness.js';

after(stopAll);

const SEAMS = fileURLToPath(new URL('./fixtures/binding-sync-seams.js', import.meta.url));
/** Not in node's fs.constants. */
const O_ACCMODE = 0o3;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const inBinding = (m: MountProcess, result = 'ok') => metric(m, new RegExp(`^aether_fuse_binding_fsyncs_total\\{result="${result}"\\}`));
const fsyncOps = (m: MountProcess, op: string, result: string) => metric(m, new RegExp(`^aether_fuse_ops_total\\{op="${op}",result="${result}"\\}`));
const manualFlushes = (m: MountProcess, outcome: string) => metric(m, new RegExp(`^aether_journal_wal_flush_total\\{reason="manual",outcome="${outcome}"\\}`));

/** Writes `rounds` records of 4 KiB to `path`, each followed by fsync; returns the errno of a failed fsync per round (or 'ok'). */
function writeAndFsync(path: string, rounds: number, from = 0): string[] {
  const fd = openSync(path, from === 0 ? 'w' : 'r+');
  try {
    return Array.from({ length: rounds }, (_, i) => {
      writeSync(fd, Buffer.alloc(4096, 97 + ((from + i) % 26)), 0, 4096, (from + i) * 4096);
      try {
        fsyncSync(fd);
        return 'ok';
      } catch (err) {
        return (err as NodeJS.ErrnoException).code ?? String(err);
      }
    });
  } finally {
    closeSync(fd);
  }
}

const expected = (rounds: number): Buffer => Buffer.concat(Array.from({ length: rounds }, (_, i) => Buffer.alloc(4096, 97 + (i % 26))));

describe('fsync answered in the binding', () => {
  it('under interval: fsync and fsyncdir are answered there, counted as operations and manual flushes, and what they covered survives kill -9', async () => {
    const base = tempDir();
    const opts = { mnt: join(base, 'mnt'), stateDir: join(base, 'state') };
    const m = await startMount(opts);
    assert.deepEqual(writeAndFsync(join(m.mnt, 'f'), 20), Array(20).fill('ok'));
    const dir = openSync(m.mnt, 'r');
    fsyncSync(dir);
    closeSync(dir);
    assert.equal(await inBinding(m), 21);
    assert.equal(await fsyncOps(m, 'fsync', 'ok'), 20);
    assert.equal(await fsyncOps(m, 'fsyncdir', 'ok'), 1);
    assert.ok((await manualFlushes(m, 'success')) >= 21);
    assert.ok((await metric(m, /^aether_fuse_op_duration_seconds_count\{op="fsync"\}/)) >= 20, 'their latencies are observed');
    await m.kill9();
    const again = await startMount(opts);
    assert.ok(readFileSync(join(again.mnt, 'f')).equals(expected(20)));
    await again.stop();
  });

  it('under manual it is JS that answers, and each fsync lets the drain take what it covered; a live switch turns the binding off and on again', async () => {
    const dir = tempDir();
    const cfg = join(dir, 'aether.toml');
    writeFileSync(cfg, 'journal_sync_policy = "manual"\n');
    const m = await startMount({ args: ['--config', cfg] });
    assert.deepEqual(writeAndFsync(join(m.mnt, 'f'), 5), Array(5).fill('ok'));
    assert.equal(await inBinding(m), 0);
    assert.equal(await fsyncOps(m, 'fsync', 'ok'), 5);
    // The fsync made the entries durable in the journal's own terms: the drain commits them.
    for (let i = 0; i < 50 && status(m).journal.committed_seq < status(m).journal.last_seq; i++) await sleep(100);
    assert.equal(status(m).journal.committed_seq, status(m).journal.last_seq);
    writeFileSync(cfg, 'journal_sync_policy = "interval"\n');
    assert.equal(m.ctl(['config', 'reload']).code, 0);
    assert.deepEqual(writeAndFsync(join(m.mnt, 'f'), 3, 5), Array(3).fill('ok'));
    assert.equal(await inBinding(m), 3);
    writeFileSync(cfg, 'journal_sync_policy = "manual"\n');
    assert.equal(m.ctl(['config', 'reload']).code, 0);
    assert.deepEqual(writeAndFsync(join(m.mnt, 'f'), 2, 8), Array(2).fill('ok'));
    assert.equal(await inBinding(m), 3, 'off again under manual');
    assert.equal(await fsyncOps(m, 'fsync', 'ok'), 10);
    assert.ok(readFileSync(join(m.mnt, 'f')).equals(expected(10)));
    await m.stop();
  });

  it('with a segment a record, the files the binding syncs are exactly the journal files open for writing, as segments roll and close', async () => {
    const m = await startMount({ env: { NODE_OPTIONS: `--import ${SEAMS}`, AFS_AETHER_JOURNAL_SEGMENT_BYTES: '8192' } });
    const journalDir = join(m.stateDir, 'journal');
    for (let round = 0; round < 3; round++) {
      assert.deepEqual(writeAndFsync(join(m.mnt, `f${round}`), 10), Array(10).fill('ok'));
      await sleep(300);
      const said = m.stderr().length;
      m.proc.kill('SIGURG');
      for (let i = 0; i < 50 && !m.stderr().slice(said).includes('binding sync files:'); i++) await sleep(20);
      const line = /binding sync files: ([\d,]*)/.exec(m.stderr().slice(said));
      assert.ok(line, m.stderr().slice(said));
      const handed = line[1]!.split(',').filter(Boolean).map(Number).sort();
      const pid = m.proc.pid!;
      const writing = readdirSync(`/proc/${pid}/fd`)
        .map(Number)
        .filter((fd) => {
          try {
            const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
            const flags = parseInt(/^flags:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'))![1]!, 8);
            return target.startsWith(`${journalDir}/`) && target.endsWith('.wal') && (flags & O_ACCMODE) !== constants.O_RDONLY;
          } catch {
            return false;
          }
        })
        .sort();
      assert.ok(handed.length >= 1, 'the active segment is handed over');
      assert.deepEqual(handed, writing);
      // The binding's own files of the segments taken back are closed: ~10 segments a round rolled.
      const journalFiles = readdirSync(`/proc/${pid}/fd`).filter((fd) => {
        try {
          return readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith(`${journalDir}/`);
        } catch {
          return false;
        }
      });
      assert.ok(journalFiles.length <= 2 * writing.length + 4, `${journalFiles.length} descriptors on journal files`);
    }
    assert.equal(await inBinding(m), 30);
    await m.stop();
  });

  it('a failed fdatasync in the binding fails that fsync with EIO; JS answers from then on, and nothing written is lost', async () => {
    const base = tempDir();
    const opts = { mnt: join(base, 'mnt'), stateDir: join(base, 'state'), env: { NODE_OPTIONS: `--import ${SEAMS}` } };
    const m = await startMount(opts);
    assert.deepEqual(writeAndFsync(join(m.mnt, 'f'), 2), ['ok', 'ok']);
    m.proc.kill('SIGUSR2');
    await sleep(200);
    // The binding's fdatasync fails; the binding answers no more. (A real writeback error would
    // fail the journal's next fdatasync too, through its own open file: not simulated here.)
    assert.deepEqual(writeAndFsync(join(m.mnt, 'f'), 4, 2), ['EIO', 'ok', 'ok', 'ok']);
    assert.equal(await inBinding(m), 2);
    assert.equal(await inBinding(m, 'EIO'), 1);
    assert.equal(await fsyncOps(m, 'fsync', 'EIO'), 1);
    assert.equal(await fsyncOps(m, 'fsync', 'ok'), 5);
    assert.equal(await manualFlushes(m, 'error'), 1);
    assert.equal(await manualFlushes(m, 'success'), 5);
    assert.equal(await metric(m, /^aether_journal_fsync_total\{outcome="error"\}/), 1, 'one fdatasync failed');
    assert.ok(readFileSync(join(m.mnt, 'f')).equals(expected(6)));
    await m.stop();
    const again = await startMount(opts);
    assert.ok(readFileSync(join(again.mnt, 'f')).equals(expected(6)));
    assert.deepEqual(writeAndFsync(join(again.mnt, 'g'), 2), ['ok', 'ok']);
    assert.equal(await inBinding(again), 2, 'after a restart the binding answers again');
    await again.stop();
  });
});
