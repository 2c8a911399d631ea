import { defineStore } from 'pinia';
import { computed, ref } from 'vue';
import type { ConnectionInfo, ConnectionTestResult } from '@contract/types';
import type { Input } from '@contract/operations';
import { api, describeError } from '../api/client';

/**
 * A connection's virtual host travels inside the renderer's connection id as
 * `id` + NUL + `vhost` (the connection's own vhost leaves the id alone), so
 * everything keyed by connection (stores, views, requests in flight) is keyed
 * by (connection, vhost) too; the API client splits it into the operation's
 * `connectionId` and `vhost` before a request leaves.
 */
const SEP = '\u0000';
export function scopedId(connectionId: string, vhost?: string | null): string {
  return vhost && vhost !== '/' ? `${connectionId}${SEP}${vhost}` : connectionId;
}
export function splitScope(id: string): { connectionId: string; vhost?: string } {
  const i = id.indexOf(SEP);
  return i < 0 ? { connectionId: id } : { connectionId: id.slice(0, i), vhost: id.slice(i + 1) };
}

export type View = 'overview' | 'details' | 'browser' | 'publisher' | 'lag' | 'deadletters' | 'listener';

/** The selected resource a view works on; views share it so "Browse" in one opens the other. */
export interface ResourceRef {
  kind: 'queue' | 'topic' | 'group' | 'exchange';
  name: string;
}

export const useConnections = defineStore('connections', () => {
  const list = ref<ConnectionInfo[]>([]);
  const error = ref<string | null>(null);
  const loading = ref(false);
  const selectedId = ref<string>('local');
  const view = ref<View>('overview');
  const resource = ref<ResourceRef | null>(null);
  /** The virtual host chosen for each connection that has several (the embedded broker). */
  const vhosts = ref<Record<string, string>>({});
  /** The selected connection and virtual host, as the id stores and requests use. */
  const scopeId = computed(() => scopedId(selectedId.value, vhosts.value[selectedId.value]));
  const vhost = computed(() => vhosts.value[selectedId.value] ?? '/');
  function setVhost(v: string) {
    if ((vhosts.value[selectedId.value] ?? '/') !== v) resource.value = null;
    vhosts.value = { ...vhosts.value, [selectedId.value]: v };
  }

  const selected = computed(() => list.value.find((c) => c.id === selectedId.value) ?? null);
  const readOnly = computed(() => selected.value?.readOnly ?? false);
  function can(capability: ConnectionInfo['capabilities'][number]): boolean {
    return selected.value?.capabilities.includes(capability) ?? false;
  }
  function info(id: string): ConnectionInfo | undefined {
    const base = splitScope(id).connectionId;
    return list.value.find((c) => c.id === base);
  }
  /** What a given connection can do: state kept per connection asks its own, not the selected one's. */
  function canFor(id: string, capability: ConnectionInfo['capabilities'][number]): boolean {
    return info(id)?.capabilities.includes(capability) ?? false;
  }
  /** A connection's name for lists that mention connections (audit, history); its id when it is gone. */
  function nameOf(id: string): string {
    return info(id)?.name ?? id;
  }

  async function refresh() {
    loading.value = true;
    try {
      list.value = await api.call('connections/list', {});
      error.value = null;
      if (!list.value.some((c) => c.id === selectedId.value)) selectedId.value = list.value[0]?.id ?? 'local';
    } catch (e) {
      error.value = `Could not load connections: ${describeError(e)}`;
    } finally {
      loading.value = false;
    }
  }

  function select(id: string) {
    if (id !== selectedId.value) resource.value = null;
    selectedId.value = id;
  }

  function open(next: View, res?: ResourceRef | null) {
    if (res !== undefined) resource.value = res;
    view.value = next;
  }

  function replace(info: ConnectionInfo) {
    list.value = list.value.map((c) => (c.id === info.id ? info : c));
  }

  async function setReadOnly(id: string, readOnly: boolean) {
    const info = await api.call('connections/setReadOnly', { connectionId: id, readOnly });
    replace(info);
  }

  async function test(config: Input<'connections/test'>): Promise<ConnectionTestResult> {
    return api.call('connections/test', config);
  }

  async function create(config: Input<'connections/create'>): Promise<string> {
    const { id } = await api.call('connections/create', config);
    await refresh();
    selectedId.value = id;
    return id;
  }

  async function remove(id: string) {
    await api.call('connections/delete', { connectionId: id });
    if (selectedId.value === id) selectedId.value = 'local';
    await refresh();
  }

  return { list, error, loading, selectedId, scopeId, vhost, setVhost, selected, readOnly, view, resource, can, info, canFor, nameOf, refresh, select, open, setReadOnly, test, create, remove };
});
