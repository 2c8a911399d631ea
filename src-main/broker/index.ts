export { Engine, TypedEmitter } from './engine.js';
export { BrokerError, type BrokerErrorCode } from './errors.js';
export { murmur2, toPositive, partitionForKey } from '../ground/murmur2.js';
export { topicMatches, compileTopic } from './topic.js';
export { headersMatch } from './headers-match.js';
export type * from './types.js';
