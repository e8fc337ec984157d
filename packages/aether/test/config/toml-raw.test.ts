import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parse } from 'smol-toml';
import { rawTomlValues } from '../../src/config/toml-raw.js';

describe('the text of each TOML value, by dotted key', () => {
  it('finds values in tables, dotted and quoted keys, inline tables at any depth, around strings, arrays and comments', () => {
    const text = [
      '# top = 0x1',
      'a = 0x10 # trailing = 3',
      'b.c = 1_000',
      '"d.e" . f = +5',
      "s = '''",
      'not_a_key = 0o7',
      "'''",
      't = """x""""',
      'u = "q = 0b1 \\" still"',
      'arr = [1, [0x2, "]"], { k = 3 }]',
      'when = 1979-05-27 07:32:00Z',
      '[x."y z"]',
      "k1 = { in = { deep = 0b101 }, 'w' = 12 }",
      '[[list]]',
      'item = 7',
      'after = 9',
    ].join('\n');
    parse(text); // the scanner runs only on text TOML accepts
    assert.deepEqual(Object.fromEntries(rawTomlValues(text)), {
      a: '0x10',
      'b.c': '1_000',
      'd.e.f': '+5',
      when: '1979-05-27 07:32:00Z',
      'x.y z.k1.in.deep': '0b101',
      'x.y z.k1.w': '12',
      'list.item': '7',
      'list.after': '9',
    });
  });
  it('reads past a byte order mark and bare keys of any length', () => {
    const long = 'k'.repeat(300);
    const text = `\uFEFF[backpressure]\n${long} = 1\njournal_high_water_bytes = 0x200000\n`;
    parse(text);
    assert.deepEqual(Object.fromEntries(rawTomlValues(text)), { [`backpressure.${long}`]: '1', 'backpressure.journal_high_water_bytes': '0x200000' });
  });
  it('stops at text it cannot read and keeps what it found before', () => {
    assert.deepEqual(Object.fromEntries(rawTomlValues('a = 1\n= oops\nb = 2\n')), { a: '1' });
  });
});
