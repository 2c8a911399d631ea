/**
 * Seeding through the HTTP API (never through the UI) and the screenshots
 * each workflow leaves under test-results/screenshots/<view>.png.
 */
import type { Page } from '@playwright/test';
import type { Server } from './fixtures';

const L = '/api/connections/local';

export interface QueueArgs {
  deadLetterTo?: string;
  arguments?: Record<string, unknown>;
}

export async function declareQueue(server: Server, name: string, opts: QueueArgs = {}): Promise<void> {
  const args: Record<string, unknown> = { ...(opts.arguments ?? {}) };
  if (opts.deadLetterTo) {
    args['x-dead-letter-exchange'] = '';
    args['x-dead-letter-routing-key'] = opts.deadLetterTo;
  }
  await server.api('PUT', `${L}/queues/${encodeURIComponent(name)}`, { durable: true, arguments: args });
}

export async function publish(server: Server, queue: string, body: string, count = 1, properties: Record<string, unknown> = {}) {
  return server.api<{ published: number; routed: Record<string, number> }>('POST', `${L}/publish`, { exchange: '', routingKey: queue, body, count, properties });
}

export async function queueInfo(server: Server, queue: string) {
  return server.api<{ messages: number; ready: number; unacked: number }>('GET', `${L}/queues/${encodeURIComponent(queue)}`);
}

export interface Browsed {
  id: string;
  body: string;
  properties: { headers?: Record<string, unknown> };
}

/** Reads every message of a queue (cursor pages) without consuming it. */
export async function allMessages(server: Server, queue: string): Promise<Browsed[]> {
  const out: Browsed[] = [];
  let cursor: string | null = null;
  do {
    const qs = new URLSearchParams({ limit: '5000', ...(cursor ? { cursor } : {}) });
    const page: { messages: Browsed[]; nextCursor: string | null } = await server.api('GET', `${L}/queues/${encodeURIComponent(queue)}/messages?${qs}`);
    out.push(...page.messages);
    cursor = page.nextCursor;
  } while (cursor);
  return out;
}

/** A unique name per test run, so tests sharing a worker's server do not see each other's queues. */
export function unique(prefix: string): string {
  return `${prefix}-${Math.random().toString(36).slice(2, 8)}`;
}

export async function screenshot(page: Page, view: 'overview' | 'browser' | 'publisher' | 'lag' | 'deadletters' | string): Promise<void> {
  await page.screenshot({ path: `test-results/screenshots/${view}.png` });
}

/** Opens a resource from the sidebar tree. */
export async function openFromSidebar(page: Page, name: string): Promise<void> {
  await page.getByRole('navigation', { name: 'Connections' }).getByRole('button', { name: new RegExp(`^${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\b`) }).first().click();
}
