/**
 * What the page asks of the core: the renderer calls operations over one
 * WebSocket (`{ t: 'call', id, op, input }`, answered by `{ id, ok, … }`), so
 * tests read its frames to see which operations went out, with what input,
 * and when each answer came back. Attach before the page loads.
 */
import type { Page } from '@playwright/test';

export interface CallRecord {
  id: number;
  op: string;
  input: Record<string, unknown>;
  /** performance-style clock of the test process (ms) when the call went out and when its answer came. */
  sentAt: number;
  answeredAt: number | null;
  ok: boolean | null;
  /** The answer's value (or error), once answered. */
  answer: unknown;
}

export function recordCalls(page: Page): CallRecord[] {
  const calls: CallRecord[] = [];
  const byId = new Map<number, CallRecord>();
  page.on('websocket', (ws) => {
    if (!ws.url().endsWith('/api/ws')) return;
    ws.on('framesent', ({ payload }) => {
      if (typeof payload !== 'string') return;
      const frame = JSON.parse(payload) as { t?: string; id?: number; op?: string; input?: Record<string, unknown> };
      if (frame.t !== 'call' || typeof frame.id !== 'number' || typeof frame.op !== 'string') return;
      const record: CallRecord = { id: frame.id, op: frame.op, input: frame.input ?? {}, sentAt: performance.now(), answeredAt: null, ok: null, answer: undefined };
      calls.push(record);
      byId.set(frame.id, record);
    });
    ws.on('framereceived', ({ payload }) => {
      if (typeof payload !== 'string') return;
      const frame = JSON.parse(payload) as { t?: string; id?: number; ok?: boolean; value?: unknown; error?: unknown };
      if (frame.t !== 'result' || typeof frame.id !== 'number') return;
      const record = byId.get(frame.id);
      if (record && record.answeredAt === null) {
        record.answeredAt = performance.now();
        record.ok = frame.ok ?? null;
        record.answer = frame.ok ? frame.value : frame.error;
      }
    });
  });
  return calls;
}
