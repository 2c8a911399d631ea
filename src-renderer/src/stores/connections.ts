import { defineStore } from 'pinia';
import { computed, ref } from 'vue';
import type { ConnectionInfo, ConnectionTestResult } from '@contract/types';
import type { Input } from '@contract/operations';
import { api, describeError } from '../api/client';

export type View = 'overview' | 'details' | 'browser' | 'publisher' | 'lag' | 'deadletters';

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

  const selected = computed(() => list.value.find((c) => c.id === selectedId.value) ?? null);
  const readOnly = computed(() => selected.value?.readOnly ?? false);
  function can(capability: ConnectionInfo['capabilities'][number]): boolean {
    return selected.value?.capabilities.includes(capability) ?? false;
  }
  function info(id: string): ConnectionInfo | undefined {
    return list.value.find((c) => c.id === id);
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

  return { list, error, loading, selectedId, selected, readOnly, view, resource, can, info, canFor, nameOf, refresh, select, open, setReadOnly, test, create, remove };
});
