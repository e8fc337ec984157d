// One workload against one directory, in its own process (never the mount's): prints JSON {seconds, units}.
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, readSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

const [op, dir, arg] = process.argv.slice(2);
const MiB = 1024 * 1024;
const t0 = process.hrtime.bigint();
let units = 0;

switch (op) {
  case 'seq-write': {
    const fd = openSync(join(dir, 'big.bin'), 'w');
    const buf = Buffer.alloc(MiB, 7);
    for (let i = 0; i < 256; i++) writeSync(fd, buf);
    fsyncSync(fd);
    closeSync(fd);
    units = 256;
    break;
  }
  case 'seq-read': {
    const fd = openSync(join(dir, 'big.bin'), 'r');
    const buf = Buffer.alloc(MiB);
    let n;
    while ((n = readSync(fd, buf, 0, MiB)) > 0) units += n / MiB;
    closeSync(fd);
    break;
  }
  case 'create': {
    mkdirSync(join(dir, 'small'), { recursive: true });
    const data = Buffer.alloc(4096, 3);
    for (let i = 0; i < 2000; i++) writeFileSync(join(dir, 'small', `f${i}`), data);
    units = 2000;
    break;
  }
  case 'stat': {
    for (let i = 0; i < 2000; i++) statSync(join(dir, 'small', `f${i}`));
    units = 2000;
    break;
  }
  case 'read-small': {
    for (let i = 0; i < 2000; i++) readFileSync(join(dir, 'small', `f${i}`));
    units = 2000;
    break;
  }
  case 'untar': {
    mkdirSync(join(dir, 'pkg'), { recursive: true });
    execFileSync('tar', ['xzf', arg, '-C', join(dir, 'pkg')]);
    units = 1;
    break;
  }
  case 'rm': {
    rmSync(join(dir, 'pkg'), { recursive: true });
    rmSync(join(dir, 'small'), { recursive: true });
    units = 1;
    break;
  }
  case 'write-fsync': {
    const fd = openSync(join(dir, 'fsync.bin'), 'w');
    const data = Buffer.alloc(4096, 5);
    for (let i = 0; i < 500; i++) {
      writeSync(fd, data, 0, data.length, i * 4096);
      fsyncSync(fd);
    }
    closeSync(fd);
    units = 500;
    break;
  }
  default:
    console.error(`unknown workload ${op}`);
    process.exit(2);
}
const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
console.log(JSON.stringify({ seconds, units }));
