/**
 * Preferences of this UI (theme, page size, lag thresholds). They describe the
 * person's screen, not a broker, so they stay in the browser's storage; nothing
 * secret is ever kept here.
 */
import { defineStore } from 'pinia';
import { ref, watch } from 'vue';

export type ThemeChoice = 'system' | 'light' | 'dark';

export interface Thresholds {
  /** Lag (messages) from which a queue or group shows as warning / critical. */
  lagWarn: number;
  lagCritical: number;
  /** Ready messages from which a queue shows as warning / critical. */
  readyWarn: number;
  readyCritical: number;
}

interface Saved {
  theme: ThemeChoice;
  pageSize: number;
  thresholds: Thresholds;
}

const KEY = 'brokerdeck.settings.v1';
const defaults: Saved = {
  theme: 'system',
  pageSize: 500,
  thresholds: { lagWarn: 1_000, lagCritical: 10_000, readyWarn: 1_000, readyCritical: 10_000 },
};

function load(): Saved {
  try {
    const raw = localStorage.getItem(KEY);
    if (!raw) return structuredClone(defaults);
    const parsed = JSON.parse(raw) as Partial<Saved>;
    return { ...defaults, ...parsed, thresholds: { ...defaults.thresholds, ...parsed.thresholds } };
  } catch {
    return structuredClone(defaults);
  }
}

export type Level = 'ok' | 'warn' | 'critical';

export const useSettings = defineStore('settings', () => {
  const saved = load();
  const theme = ref<ThemeChoice>(saved.theme);
  const pageSize = ref<number>(saved.pageSize);
  const thresholds = ref<Thresholds>(saved.thresholds);

  watch(
    [theme, pageSize, thresholds],
    () => {
      try {
        localStorage.setItem(KEY, JSON.stringify({ theme: theme.value, pageSize: pageSize.value, thresholds: thresholds.value }));
      } catch {
        // Storage full or disabled: preferences last for this session only.
      }
    },
    { deep: true },
  );

  function lagLevel(lag: number): Level {
    const t = thresholds.value;
    return lag >= t.lagCritical ? 'critical' : lag >= t.lagWarn ? 'warn' : 'ok';
  }
  function readyLevel(ready: number): Level {
    const t = thresholds.value;
    return ready >= t.readyCritical ? 'critical' : ready >= t.readyWarn ? 'warn' : 'ok';
  }

  return { theme, pageSize, thresholds, lagLevel, readyLevel };
});
