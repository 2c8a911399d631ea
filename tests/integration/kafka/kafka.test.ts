/**
 * Brokerdeck's Kafka connector against a real broker: one single-node Kafka
 * (started here unless KAFKA_BROKERS names a cluster) serves every suite,
 * in order; the suite that stops the broker mid-re-drive runs last.
 */
import { useKafkaBroker } from '../../kafka/broker.js';
import { browseSuite } from './browse.suite.js';
import { connectionSuite } from './connection.suite.js';
import { deadLettersSuite } from './deadletters.suite.js';
import { groupsSuite } from './groups.suite.js';
import { produceSuite } from './produce.suite.js';
import { restartSuite } from './restart.suite.js';
import { schemaRegistrySuite } from './schema-registry.suite.js';
import { singleResourceSuite } from './single.suite.js';
import { topicConfigSuite } from './topic-config.suite.js';
import { topicsSuite } from './topics.suite.js';

const kafka = useKafkaBroker();

connectionSuite(kafka);
topicsSuite(kafka);
topicConfigSuite(kafka);
browseSuite(kafka);
produceSuite(kafka);
groupsSuite(kafka);
singleResourceSuite(kafka);
deadLettersSuite(kafka);
schemaRegistrySuite(kafka);
restartSuite(kafka);
