// Writes COUNT files of SIZE bytes into DIR, printing "ok N" after each one returns.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [dir, count, size] = process.argv.slice(2);
const data = Buffer.alloc(Number(size), 0x61);
for (let i = 0; i < Number(count); i++) {
  writeFileSync(join(dir, `w${i}`), data);
  process.stdout.write(`ok ${i}\n`);
}
