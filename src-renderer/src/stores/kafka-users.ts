import { defineStore } from 'pinia';
import { ref } from 'vue';
import type { KafkaScramMechanism, KafkaUserInfo } from '@contract/types';
import { api, describeError } from '../api/client';

/**
 * The SASL users of the embedded broker's Kafka listener, as `kafka-configs
 * --entity-type users` manages them: each with the mechanisms and iteration
 * counts of its SCRAM credentials. Passwords go to the core and are never read
 * back. Refreshed when the listener view opens and after each change (the view
 * counts each user's connections from the listener's own refresh).
 */
export const useKafkaUsers = defineStore('kafkaUsers', () => {
  const users = ref<KafkaUserInfo[]>([]);
  /** False while there are no users: clients connect without SASL. */
  const saslRequired = ref(false);
  /** Why kafka-users.json could not be read. */
  const problem = ref<string | null>(null);
  const error = ref<string | null>(null);
  const loaded = ref(false);

  async function refresh(): Promise<void> {
    try {
      const info = await api.call('listeners/kafkaUsers', {});
      users.value = info.users;
      saslRequired.value = info.saslRequired;
      problem.value = info.problem;
      error.value = null;
    } catch (e) {
      error.value = describeError(e);
    } finally {
      loaded.value = true;
    }
  }

  async function put(user: string, password: string, mechanisms: KafkaScramMechanism[], iterations: number): Promise<void> {
    await api.call('listeners/kafkaUserPut', { user, password, mechanisms, iterations });
    await refresh();
  }

  /** Deletes the user, or only its credential for one mechanism. */
  async function remove(user: string, mechanism?: KafkaScramMechanism): Promise<void> {
    await api.call('listeners/kafkaUserDelete', mechanism ? { user, mechanism } : { user });
    await refresh();
  }

  return { users, saslRequired, problem, error, loaded, refresh, put, remove };
});
