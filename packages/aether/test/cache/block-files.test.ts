import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Block } from '../../src/runtime/cache/block.js';
import { BlockFiles, DISCARDS_AT_ONCE } from '../../src/runtime/cache/block-files.js';
import { tempDir } from './helpers.js';

describe('block files', () => {
  it('discarding many blocks at once deletes their files a few at a time, every one of them', async () => {
    let running = 0;
    let most = 0;
    const order: string[] = [];
    const files = new BlockFiles(join(tempDir(), 'blocks'), 8, () => assert.fail('no block is lost'), () => {}, async (path) => {
      running++;
      most = Math.max(most, running);
      // Slow deletions: the discards after the first ones must wait for a turn.
      await new Promise((r) => setTimeout(r, 2));
      await unlink(path);
      order.push(path);
      running--;
    });
    await files.init();
    const blocks = Array.from({ length: 40 }, (_, i) => new Block(1, i, i + 1));
    for (const b of blocks) {
      files.write(b, Buffer.alloc(100, b.index), 0, 100, 0);
      await files.flushNow(b);
    }
    const paths = blocks.map((b) => files.path(b));
    assert.ok(paths.every((p) => existsSync(p)), 'every block has its file');
    await Promise.all(blocks.map((b) => files.discard(b, true)));
    assert.equal(most, DISCARDS_AT_ONCE, `at most ${DISCARDS_AT_ONCE} deletions ran at once`);
    assert.deepEqual(order.length, 40);
    assert.ok(paths.every((p) => !existsSync(p)), 'every file is gone');
    assert.deepEqual([...order].sort(), [...paths].sort());
    // A block discarded after the burst still gets its turn.
    const late = new Block(2, 0, 99);
    files.write(late, Buffer.alloc(10, 1), 0, 10, 0);
    await files.flushNow(late);
    await files.discard(late, true);
    assert.ok(!existsSync(files.path(late)));
    assert.equal(running, 0);
  });

  it('a deletion that destroys bytes (not paced) runs at once, ahead of the paced ones waiting', async () => {
    const order: string[] = [];
    // Each deletion takes 40 ms: well above the scheduling noise of a loaded machine (with 5 ms
    // a CI run saw the urgent one finish 4th), so the order shows the queueing, not the noise.
    const files = new BlockFiles(join(tempDir(), 'blocks'), 8, () => assert.fail('no block is lost'), () => {}, async (path) => {
      await new Promise((r) => setTimeout(r, 40));
      await unlink(path);
      order.push(path);
    });
    await files.init();
    const blocks = Array.from({ length: 12 }, (_, i) => new Block(1, i, i + 1));
    const urgent = new Block(2, 0, 100);
    for (const b of [...blocks, urgent]) {
      files.write(b, Buffer.alloc(100, 1), 0, 100, 0);
      await files.flushNow(b);
    }
    const paced = blocks.map((b) => files.discard(b, true));
    await files.discard(urgent);
    assert.ok(!existsSync(files.path(urgent)), 'its file is gone when the discard resolves');
    assert.ok(order.indexOf(files.path(urgent)) <= DISCARDS_AT_ONCE, `deleted among the first, not after the queue (${order.indexOf(files.path(urgent))} of ${order.length} done)`);
    await Promise.all(paced);
    assert.equal(order.length, 13);
  });

  it('a block whose handle fails to close still has its file deleted', async () => {
    const files = new BlockFiles(join(tempDir(), 'blocks'), 8, () => assert.fail('no block is lost'));
    await files.init();
    for (const paced of [false, true]) {
      const b = new Block(3, paced ? 1 : 0, paced ? 2 : 1);
      files.write(b, Buffer.alloc(100, 1), 0, 100, 0);
      await files.flushNow(b);
      const handle = b.handle;
      assert.ok(handle, 'the flush left the block\'s file open');
      const close = handle.close.bind(handle);
      handle.close = async () => {
        await close();
        throw Object.assign(new Error('EIO: i/o error, close'), { code: 'EIO' });
      };
      await assert.rejects(files.discard(b, paced), { code: 'EIO' });
      assert.ok(!existsSync(files.path(b)), `the file is gone (${paced ? 'paced' : 'at once'})`);
    }
  });
});
