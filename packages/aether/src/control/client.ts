import { createConnection } from 'node:net';
import { AetherError } from '../errors.js';
import type { CommandName, ControlReply } from './protocol.js';

/** Sends one control command to the mount listening on `socketPath` and returns its result. */
export function sendControl(socketPath: string, cmd: CommandName, args: Record<string, unknown> = {}, timeoutMs = 30_000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(socketPath);
    let buf = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new AetherError('CONTROL_UNAVAILABLE', `${cmd}: no reply from the mount within ${timeoutMs} ms`));
    }, timeoutMs);
    sock.setEncoding('utf8');
    sock.once('connect', () => sock.write(JSON.stringify({ cmd, args }) + '\n'));
    const notAether = (): AetherError => new AetherError('CONTROL_UNAVAILABLE', `${socketPath} does not answer as an Aether control socket`);
    sock.on('data', (chunk: string) => {
      buf += chunk;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      sock.end();
      let reply: ControlReply;
      try {
        reply = JSON.parse(buf.slice(0, nl)) as ControlReply;
      } catch {
        return reject(notAether());
      }
      if (typeof reply !== 'object' || reply === null || typeof reply.ok !== 'boolean') return reject(notAether());
      if (reply.ok) resolve(reply.result);
      else reject(new AetherError('CONTROL_BAD_REQUEST', `${cmd}: ${reply.error}`));
    });
    // A peer that closes without a whole reply line is not going to answer.
    sock.once('end', () => {
      clearTimeout(timer);
      if (buf.indexOf('\n') < 0) reject(notAether());
    });
    let connected = false;
    sock.once('connect', () => (connected = true));
    sock.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      // Reset after the request went out: the mount stopped (or died) before it answered.
      const gone = connected && (err.code === 'ECONNRESET' || err.code === 'EPIPE');
      const why = err.code === 'ENOENT' || err.code === 'ECONNREFUSED' ? 'no mount is running there' : gone ? `the mount stopped before it answered ${cmd} (${err.code})` : err.message;
      reject(new AetherError('CONTROL_UNAVAILABLE', `cannot reach the mount's control socket ${socketPath}: ${why}`, { cause: err }));
    });
  });
}
