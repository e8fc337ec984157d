export * from './protocol.js';
export { sendControl } from './client.js';
export { ControlServer, type Handler } from './server.js';
