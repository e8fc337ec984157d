/**
 * A watcher process that aborts this mount's FUSE session once the mount has died but cannot
 * finish dying. A thread of the mount blocked in the kernel (an entry invalidation waiting for a
 * directory lock that a request to this very mount holds) keeps the process, and its descriptor
 * of `/dev/fuse` with it, alive after a kill -9: the session never ends, and every program that
 * touches the mount hangs (FUSE.md, "Limits"). The kernel's `fusectl` file system can abort a
 * session from outside (`/sys/fs/fuse/connections/<minor>/abort`); the watcher does that when the
 * mount's main thread has exited while other threads remain (a zombie that is not done), and
 * exits quietly when the mount ends normally.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';

export const FUSECTL_DIR = '/sys/fs/fuse/connections';

/** Seconds between the watcher's looks at the mount process. */
const WATCH_INTERVAL_S = 1;

// sh, not node: a second Node.js process would cost ~40 MB for a loop. $1 pid, $2 connection,
// $3 the process's start time (a pid used again by another process is not this mount). Fields
// after the command name in /proc/PID/stat: $1 state, $18 threads, $20 start time.
const SCRIPT = `
p=$1; c=$2; t=$3
while :; do
  read -r line < /proc/$p/stat || exit 0
  set -- \${line##*) }
  [ "\${20}" = "$t" ] || exit 0
  case $1 in
    Z|X) if [ "\${18}" -gt 1 ] && [ -e ${FUSECTL_DIR}/$c/abort ]; then echo 1 > ${FUSECTL_DIR}/$c/abort; fi; exit 0 ;;
  esac
  sleep ${WATCH_INTERVAL_S}
done`;

/** The FUSE connection (the mount's anonymous device minor) of the mount at `mountpoint`, from mountinfo. */
export function fuseConnection(mountpoint: string, mountinfo = readFileSync('/proc/self/mountinfo', 'utf8')): number | undefined {
  let found: number | undefined;
  for (const line of mountinfo.split('\n')) {
    const f = line.split(' ');
    const dev = /^0:(\d+)$/.exec(f[2] ?? '');
    // The last one mounted there is on top.
    if (dev && f[4] === mountpoint.replace(/[ \t\n\\]/g, (ch) => `\\${ch.charCodeAt(0).toString(8).padStart(3, '0')}`) && (line.includes(' - fuse.') || line.includes(' - fuse '))) found = Number(dev[1]);
  }
  return found;
}

/**
 * Starts the watcher for this process's session at `mountpoint`. Returns why it could not
 * (no connection found, no fusectl and no right to mount it), or undefined once it runs.
 */
export function watchSession(mountpoint: string): string | undefined {
  const conn = fuseConnection(mountpoint);
  if (conn === undefined) return `no FUSE connection found for ${mountpoint} in /proc/self/mountinfo`;
  if (!existsSync(`${FUSECTL_DIR}/${conn}`)) spawnSync('mount', ['-t', 'fusectl', 'fusectl', FUSECTL_DIR], { stdio: 'ignore' });
  if (!existsSync(`${FUSECTL_DIR}/${conn}/abort`)) return `${FUSECTL_DIR} is not mounted (mount -t fusectl fusectl ${FUSECTL_DIR} as root)`;
  const stat = readFileSync(`/proc/${process.pid}/stat`, 'utf8');
  const start = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  const child = spawn('sh', ['-c', SCRIPT, 'aether-session-watch', String(process.pid), String(conn), String(start)], { detached: true, stdio: 'ignore' });
  child.on('error', () => undefined);
  child.unref();
  return undefined;
}
