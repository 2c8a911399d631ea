export * from './errors.js';
export * from './types.js';
export * from './operations.js';
export * from './events.js';
export * from './routes.js';
export * from './wire.js';
export * from './validate.js';
