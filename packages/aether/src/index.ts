export * from './config/index.js';
export * from './control/index.js';
export { AetherError, isAetherError, type AetherErrorCode } from './errors.js';
export * from './mount/index.js';
