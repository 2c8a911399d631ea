/**
 * Managing the Kafka listener's users from Brokerdeck, as `kafka-configs
 * --entity-type users` does over the wire (DescribeUserScramCredentials,
 * AlterUserScramCredentials): list them with the mechanisms and iteration
 * counts of their SCRAM credentials; add one or change its password for
 * SCRAM-SHA-256 and/or SCRAM-SHA-512 (salted here, with a fresh random salt);
 * delete one, or one of its credentials.
 *
 * A change applies to the next authentication at once. Connections already
 * authenticated stay open, as in Kafka, which keeps a session until it
 * re-authenticates (connections.max.reauth.ms, unset by default); they can be
 * disconnected from the clients table. While there are no users the listener
 * asks new clients for no authentication. Passwords and salted material never
 * leave the store, and no log line carries them.
 */
import type { KafkaUserInfo, KafkaUsersInfo } from '../../contract/types.js';
import type { Listener } from '../listener.js';
import type { KafkaConnection } from './connection.js';
import type { KafkaServer } from './server.js';
import { SCRAM_MECHANISMS, SCRAM_ITERATIONS, type ScramMechanism } from './users.js';

export class KafkaUsersUnavailable extends Error {}

export class KafkaUserAdmin {
  constructor(private readonly listener: Listener<KafkaConnection> & { kafka: KafkaServer }) {}

  private get server(): KafkaServer {
    return this.listener.kafka;
  }

  /** Open connections by the user they authenticated as. */
  private openByUser(): Map<string, number> {
    const open = new Map<string, number>();
    for (const { connection } of this.listener.connections().values()) {
      const user = connection.sasl.principal;
      if (user !== null && !connection.isClosed) open.set(user, (open.get(user) ?? 0) + 1);
    }
    return open;
  }

  list(): KafkaUsersInfo {
    const open = this.openByUser();
    const users = this.server.users.describe().map((u) => ({ ...u, connections: open.get(u.name) ?? 0 }));
    return { users, saslRequired: this.server.users.required, problem: this.server.users.problem };
  }

  get(name: string): KafkaUserInfo | undefined {
    return this.list().users.find((u) => u.name === name);
  }

  /** Adds the user, or changes its password for these mechanisms; its credentials for the others are kept. */
  put(name: string, password: string, mechanisms: readonly ScramMechanism[] = SCRAM_MECHANISMS, iterations = SCRAM_ITERATIONS): KafkaUserInfo {
    this.writable();
    const existed = this.server.users.get(name) !== undefined;
    this.server.users.setPassword(name, password, mechanisms, iterations);
    this.server.logger.info(existed ? 'kafka user password changed' : 'kafka user added', { user: name, mechanisms: [...mechanisms], iterations });
    return this.get(name)!;
  }

  /**
   * Deletes the user, or only its credential for one mechanism (the user goes
   * with its last one). False when there was no such user or credential.
   */
  delete(name: string, mechanism?: ScramMechanism): boolean {
    this.writable();
    const users = this.server.users;
    const done = mechanism ? users.deleteCredential(name, mechanism) : users.deleteUser(name);
    if (done) this.server.logger.info(mechanism ? 'kafka user credential deleted' : 'kafka user deleted', { user: name, ...(mechanism ? { mechanism } : {}) });
    return done;
  }

  /** A users file that could not be read is not overwritten: fixing it by hand keeps what it held. */
  private writable(): void {
    const problem = this.server.users.problem;
    if (problem) throw new KafkaUsersUnavailable(`${problem}: fix or remove the file, then turn the Kafka listener off and on; until then no user can be changed`);
  }
}
