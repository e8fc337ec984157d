export { LocalMount, type LocalMountOptions, type MountState } from './local-mount.js';
export type { RemoteBackend, RemoteDrainContext, RemoteOpenContext, SyncDrain } from './backend.js';
