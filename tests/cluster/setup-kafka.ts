/** Global setup of the Kafka cluster project: see setup.ts. */
export { kafka as setup } from './setup.js';
