import { defineStore } from 'pinia';
import { ref } from 'vue';
import type { AmqpUserInfo } from '@contract/types';
import { api, describeError } from '../api/client';

/**
 * The users of the embedded broker's AMQP listener and their per-vhost
 * permissions, as RabbitMQ's console manages them. Passwords go to the core
 * and are never read back. Refreshed when the listener view opens and after
 * each change (the view counts each user's connections from the listener's
 * own refresh).
 */
export const useAmqpUsers = defineStore('amqpUsers', () => {
  const users = ref<AmqpUserInfo[]>([]);
  const vhosts = ref<string[]>(['/']);
  const error = ref<string | null>(null);

  async function refresh(): Promise<void> {
    try {
      const [list, hosts] = await Promise.all([api.call('listeners/amqpUsers', {}), api.call('vhosts/list', { connectionId: 'local' })]);
      users.value = list;
      vhosts.value = hosts.map((h) => h.name).sort();
      error.value = null;
    } catch (e) {
      error.value = describeError(e);
    }
  }

  async function put(user: string, password: string, tags: string[]): Promise<void> {
    await api.call('listeners/amqpUserPut', { user, password, tags });
    await refresh();
  }

  async function remove(user: string): Promise<void> {
    await api.call('listeners/amqpUserDelete', { user });
    await refresh();
  }

  async function setPermissions(user: string, vhost: string, configure: string, write: string, read: string): Promise<void> {
    await api.call('listeners/amqpPermissionsPut', { user, vhost, configure, write, read });
    await refresh();
  }

  async function clearPermissions(user: string, vhost: string): Promise<void> {
    await api.call('listeners/amqpPermissionsDelete', { user, vhost });
    await refresh();
  }

  return { users, vhosts, error, refresh, put, remove, setPermissions, clearPermissions };
});
