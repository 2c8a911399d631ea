/** Global setup of the RabbitMQ cluster project: see setup.ts. */
export { rabbitmq as setup } from './setup.js';
