import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { conflictName, splitExt, utcStamp } from '../../src/hub/conflict-name.js';

const ID = '0f8e2d5c-1b3a-4c6d-8e9f-a0b1c2d3e4f5';
const AT = Date.UTC(2026, 10, 22, 1, 2, 3, 456);
const none = () => false;

describe('conflict names (DESIGN §2)', () => {
  it('NAME.conflict-<mount-id>-<UTC timestamp><ext>', () => {
    assert.equal(utcStamp(AT), '20261122T010203Z');
    assert.equal(conflictName('a.txt', ID, AT, none), `a.conflict-${ID}-20261122T010203Z.txt`);
    assert.equal(conflictName('Makefile', ID, AT, none), `Makefile.conflict-${ID}-20261122T010203Z`);
    assert.equal(conflictName('archive.tar.gz', ID, AT, none), `archive.tar.conflict-${ID}-20261122T010203Z.gz`);
  });

  it('a leading dot is not an extension; an overlong extension is part of the name', () => {
    assert.deepEqual(splitExt('.bashrc'), ['.bashrc', '']);
    assert.equal(conflictName('.bashrc', ID, AT, none), `.bashrc.conflict-${ID}-20261122T010203Z`);
    const longExt = `x.${'e'.repeat(40)}`;
    assert.equal(conflictName(longExt, ID, AT, none), `${longExt}.conflict-${ID}-20261122T010203Z`);
  });

  it('a taken name gets -2, -3 after the timestamp', () => {
    const taken = new Set([`a.conflict-${ID}-20261122T010203Z.txt`, `a.conflict-${ID}-20261122T010203Z-2.txt`]);
    assert.equal(conflictName('a.txt', ID, AT, (n) => taken.has(n)), `a.conflict-${ID}-20261122T010203Z-3.txt`);
  });

  it('stays within 255 bytes, cutting the stem on a character boundary', () => {
    const name = `${'é'.repeat(120)}.txt`;
    const out = conflictName(name, ID, AT, none);
    assert.ok(Buffer.byteLength(out) <= 255, `${Buffer.byteLength(out)} bytes`);
    assert.ok(out.endsWith(`.conflict-${ID}-20261122T010203Z.txt`));
    assert.ok(!out.includes('\ufffd'));
  });
});
