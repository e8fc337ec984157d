import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync, openSync, fsyncSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { AetherError } from '@aether/core/errors';

/**
 * Who this mount is to its hub: a persistent mount id, and the mount number and inode base the hub
 * assigned at the first handshake. Kept in `<state_dir>/bridge-identity.json` so that a restart
 * while the hub is down can still number new inodes (only the very first start needs the hub).
 */
export interface MountIdentity {
  mountId: string;
  url: string;
  mountNo?: number;
  inoBase?: number;
  hubId?: string;
}

const FILE = 'bridge-identity.json';

export function loadIdentity(stateDir: string, url: string): MountIdentity {
  const path = join(stateDir, FILE);
  if (!existsSync(path)) {
    const fresh: MountIdentity = { mountId: randomUUID(), url };
    saveIdentity(stateDir, fresh);
    return fresh;
  }
  const parsed = JSON.parse(readFileSync(path, 'utf8')) as MountIdentity;
  if (typeof parsed.mountId !== 'string') throw new AetherError('BRIDGE_PROTOCOL', `${path}: no mountId`);
  return parsed;
}

/** Written to a temporary file, fsynced and renamed: a crash leaves the old or the new identity, never half. */
export function saveIdentity(stateDir: string, id: MountIdentity): void {
  const path = join(stateDir, FILE);
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, JSON.stringify(id, null, 2) + '\n');
  const fd = openSync(tmp, 'r');
  fsyncSync(fd);
  closeSync(fd);
  renameSync(tmp, path);
}
