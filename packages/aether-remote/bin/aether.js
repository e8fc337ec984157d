#!/usr/bin/env node
// The journal, the cache and the store do file I/O on libuv's thread pool; a mount needs more than
// the default 4 threads so that fsyncs in the background do not hold up foreground requests.
process.env.UV_THREADPOOL_SIZE ??= '16';
const { main } = await import('../dist/src/cli/main.js');

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`aether: internal error: ${err && err.stack ? err.stack : String(err)}\n`);
    process.exitCode = 1;
  },
);
