export { LocalMount, type LocalMountOptions, type MountState } from './local-mount.js';
