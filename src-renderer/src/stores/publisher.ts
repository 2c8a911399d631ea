/**
 * The publisher's form, what it sends and what came back. The form is plain
 * data so it can be saved as a template, restored from history, or pre-filled
 * from a message ("publish again").
 */
import { defineStore } from 'pinia';
import { computed, ref, shallowRef, watch } from 'vue';
import type { HistoryEntry, MessageProperties, MessageView, PublishJob, PublishResult, RecordView, Template } from '@contract/types';
import { FINAL_JOB_STATES } from '@contract/types';
import type { Input } from '@contract/operations';
import { api, describeError } from '../api/client';
import { toText } from '../lib/body';
import { splitScope, useConnections } from './connections';

export type HeaderType = 'string' | 'number' | 'boolean' | 'json';
export interface HeaderRow {
  name: string;
  type: HeaderType;
  value: string;
}

export interface PublishForm {
  targetKind: 'exchange' | 'queue' | 'topic';
  exchange: string;
  routingKey: string;
  queue: string;
  topic: string;
  key: string;
  partition: number | null;
  bodyMode: 'json' | 'text';
  body: string;
  headers: HeaderRow[];
  contentType: string;
  autoMessageId: boolean;
  messageId: string;
  correlationId: string;
  replyTo: string;
  priority: number | null;
  expiration: string;
  xDelay: number | null;
  persistent: boolean;
  type: string;
  appId: string;
  count: number;
}

export function emptyForm(): PublishForm {
  return {
    targetKind: 'queue',
    exchange: '',
    routingKey: '',
    queue: '',
    topic: '',
    key: '',
    partition: null,
    bodyMode: 'json',
    body: '{\n  "id": "{{uuid}}",\n  "n": {{i}},\n  "at": "{{now}}"\n}\n',
    headers: [],
    contentType: 'application/json',
    autoMessageId: true,
    messageId: '',
    correlationId: '',
    replyTo: '',
    priority: null,
    expiration: '',
    xDelay: null,
    persistent: true,
    type: '',
    appId: '',
    count: 1,
  };
}

/**
 * The core replaces placeholders per copy: {{i}} with a number, {{uuid}} and
 * {{now}} with text (an ISO time). To check the JSON they stand in as what
 * they become, so `{{i}}` may stand bare while `{{now}}` must be quoted. The
 * stand-ins keep the length, so line and column of a problem stay true.
 */
export function jsonForValidation(body: string): string {
  return body.replace(/\{\{i\}\}/g, '10000').replace(/\{\{uuid\}\}/g, 'uuid0000').replace(/\{\{now\}\}/g, 'now0000');
}

export interface JsonProblem {
  message: string;
  line: number;
  column: number;
  offset: number;
}

/**
 * Where a JSON text goes wrong, as offset, line and column. Engines word
 * JSON.parse's errors differently and recent V8 no longer gives a position,
 * so the text is checked by a small scanner of the JSON grammar instead.
 */
export function jsonProblem(text: string): JsonProblem | null {
  // The engine's parser accepts the same grammar many times faster: the scanner only
  // runs to say where a text that does not parse goes wrong (a 5 MB body took seconds).
  try {
    JSON.parse(text);
    return null;
  } catch {
    // Located below.
  }
  let i = 0;
  const n = text.length;
  class Stop extends Error {
    constructor(
      message: string,
      readonly at: number,
    ) {
      super(message);
    }
  }
  const fail = (what: string, at = i): never => {
    throw new Stop(at >= n ? `${what}, but the text ended` : `${what}, found ${JSON.stringify(text[at])}`, at);
  };
  const ws = () => {
    while (i < n && (text[i] === ' ' || text[i] === '\n' || text[i] === '\r' || text[i] === '\t')) i++;
  };
  const literal = (word: string) => {
    for (let k = 0; k < word.length; k++) if (text[i + k] !== word[k]) fail(`Expected ${word}`, i + k);
    i += word.length;
  };
  const string = () => {
    i++;
    while (i < n && text[i] !== '"') {
      const c = text.charCodeAt(i);
      if (c < 0x20) fail('Control characters must be escaped inside a string');
      if (text[i] === '\\') {
        i++;
        if (text[i] === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 1, i + 5))) fail('Expected four hex digits after \\u', i + 1);
          i += 5;
          continue;
        }
        if (!'"\\/bfnrt'.includes(text[i] ?? '') || i >= n) fail('Unknown escape');
      }
      i++;
    }
    if (i >= n) fail('Unterminated string');
    i++;
  };
  const number = () => {
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i, i + 400));
    if (!m || m[0] === '-' || m[0] === '') fail('Expected a value');
    i += m![0].length;
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      ws();
      if (text[i] === '}') return void i++;
      for (;;) {
        ws();
        if (text[i] !== '"') fail('Expected a property name in double quotes');
        string();
        ws();
        if (text[i] !== ':') fail('Expected ":" after the property name');
        i++;
        value();
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') return void i++;
        fail('Expected "," or "}"');
      }
    }
    if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') return void i++;
      for (;;) {
        value();
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') return void i++;
        fail('Expected "," or "]"');
      }
    }
    if (c === '"') return string();
    if (c === 't') return literal('true');
    if (c === 'f') return literal('false');
    if (c === 'n') return literal('null');
    if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return number();
    fail('Expected a value');
  };
  try {
    value();
    ws();
    if (i < n) fail('Unexpected text after the JSON value');
    return null;
  } catch (e) {
    if (!(e instanceof Stop)) throw e;
    const offset = Math.min(e.at, n);
    const before = text.slice(0, offset).split('\n');
    return { message: e.message, line: before.length, column: before[before.length - 1]!.length + 1, offset };
  }
}

/** Placeholders the core expands per copy. */
const PLACEHOLDER = /\{\{(i|uuid|now)\}\}/;

function parseHeader(row: HeaderRow): unknown {
  switch (row.type) {
    case 'number': {
      // `{{i}}` in a number header: the core expands the text per copy and sends the number.
      if (PLACEHOLDER.test(row.value)) return { $number: row.value };
      const n = Number(row.value);
      if (row.value.trim() === '' || !Number.isFinite(n)) throw new Error(`header "${row.name}" must be a number`);
      return n;
    }
    case 'boolean':
      if (row.value !== 'true' && row.value !== 'false') throw new Error(`header "${row.name}" must be true or false`);
      return row.value === 'true';
    case 'json':
      try {
        return JSON.parse(row.value) as unknown;
      } catch (e) {
        throw new Error(`header "${row.name}" is not valid JSON: ${(e as Error).message}`);
      }
    default:
      return row.value;
  }
}

function headerRows(headers: Record<string, unknown> | undefined): HeaderRow[] {
  return Object.entries(headers ?? {}).map(([name, v]) => {
    if (typeof v === 'number') return { name, type: 'number', value: String(v) };
    if (typeof v === 'boolean') return { name, type: 'boolean', value: String(v) };
    if (typeof v === 'string') return { name, type: 'string', value: v };
    return { name, type: 'json', value: JSON.stringify(v) };
  });
}

function looksJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

export interface SendOutcome {
  at: number;
  target: string;
  result: PublishResult;
}

/**
 * One store per connection: the form, the last result and the history belong to
 * the connection they were made on, so a form filled for one broker (or
 * "Reuse" of its history) can never be sent to another.
 */
function setup(connectionId: string) {
  const connections = useConnections();
  /** The target kinds this connection can publish to, in the order the form offers them. */
  function targetKinds(): Array<PublishForm['targetKind']> {
    const out: Array<PublishForm['targetKind']> = [];
    if (connections.canFor(connectionId, 'queues')) out.push('queue', 'exchange');
    if (connections.canFor(connectionId, 'topics')) out.push('topic');
    return out;
  }
  /** A form whose target kind this connection cannot publish to takes the first one it can. */
  function fit(f: PublishForm): PublishForm {
    const kinds = targetKinds();
    if (kinds.length && !kinds.includes(f.targetKind)) f.targetKind = kinds[0]!;
    return f;
  }
  const form = ref<PublishForm>(fit(emptyForm()));
  // The connection's capabilities may arrive after the store is made (the list loads at start).
  watch(() => targetKinds().join(), () => void fit(form.value));
  const sending = ref(false);
  const error = ref<string | null>(null);
  const errorField = ref<string | null>(null);
  const outcome = shallowRef<SendOutcome | null>(null);
  const templates = ref<Template[]>([]);
  const history = ref<HistoryEntry[]>([]);
  const listError = ref<string | null>(null);
  const importing = ref<{ done: number; total: number; failed: number; errors: string[] } | null>(null);
  let importStop = false;

  const bodyProblem = computed(() => (form.value.bodyMode === 'json' ? jsonProblem(jsonForValidation(form.value.body)) : null));

  function targetLabel(f: PublishForm): string {
    if (f.targetKind === 'topic') return `${f.topic}${f.partition !== null ? `[${f.partition}]` : ''}${f.key ? ` key=${f.key}` : ''}`;
    if (f.targetKind === 'queue') return `queue ${f.queue}`;
    return `${f.exchange || '(default)'} → ${f.routingKey}`;
  }

  /** The operation and its input, or a message saying what is wrong. */
  function build(f: PublishForm = form.value): { op: 'publish'; input: Input<'publish'> } | { op: 'topics/produce'; input: Input<'topics/produce'> } {
    if (f.bodyMode === 'json') {
      const p = jsonProblem(jsonForValidation(f.body));
      if (p) throw Object.assign(new Error(`The body is not valid JSON (line ${p.line}, column ${p.column}: ${p.message}). Fix it, or switch the body to Text to send it as is.`), { field: 'body' });
    }
    const headers: Record<string, unknown> = {};
    for (const row of f.headers) {
      if (!row.name.trim()) continue;
      headers[row.name.trim()] = parseHeader(row);
    }
    if (f.targetKind === 'topic') {
      if (!f.topic) throw Object.assign(new Error('Choose a topic to produce to.'), { field: 'topic' });
      // Kafka header values are strings: a typed value travels as its text (placeholders expand in it).
      const strHeaders: Record<string, string> = {};
      for (const row of f.headers) {
        const k = row.name.trim();
        if (!k) continue;
        const v = headers[k];
        strHeaders[k] = typeof v === 'string' ? v : row.type === 'number' ? row.value : JSON.stringify(v);
      }
      return {
        op: 'topics/produce',
        input: {
          connectionId,
          topic: f.topic,
          key: f.key === '' ? null : f.key,
          value: f.body,
          headers: strHeaders,
          ...(f.partition !== null ? { partition: f.partition } : {}),
          count: f.count,
        },
      };
    }
    if (f.xDelay !== null) headers['x-delay'] = f.xDelay;
    const properties: MessageProperties = { deliveryMode: f.persistent ? 2 : 1 };
    if (f.contentType) properties.contentType = f.contentType;
    // A generated id per message: the core expands {{uuid}} in message ids for each copy.
    if (f.autoMessageId) {
      properties.messageId = f.count === 1 ? crypto.randomUUID() : '{{uuid}}';
    } else if (f.messageId) properties.messageId = f.messageId;
    if (f.correlationId) properties.correlationId = f.correlationId;
    if (f.replyTo) properties.replyTo = f.replyTo;
    if (f.priority !== null) properties.priority = f.priority;
    if (f.expiration) properties.expiration = f.expiration;
    if (f.type) properties.type = f.type;
    if (f.appId) properties.appId = f.appId;
    if (Object.keys(headers).length) properties.headers = headers;
    if (f.targetKind === 'queue' && !f.queue) throw Object.assign(new Error('Choose a queue to publish to.'), { field: 'queue' });
    return {
      op: 'publish',
      input: {
        connectionId,
        exchange: f.targetKind === 'queue' ? '' : f.exchange,
        routingKey: f.targetKind === 'queue' ? f.queue : f.routingKey,
        body: f.body,
        properties,
        count: f.count,
        mandatory: true,
      },
    };
  }

  async function send() {
    if (sending.value) return;
    error.value = null;
    errorField.value = null;
    let request;
    try {
      request = build();
    } catch (e) {
      error.value = (e as Error).message;
      errorField.value = (e as { field?: string }).field ?? null;
      return;
    }
    // A finished job's panel gives way to what is sent next.
    if (job.value && FINAL_JOB_STATES.includes(job.value.state)) job.value = null;
    if (request.input.count !== undefined && request.input.count > 1) {
      await startJob(request, targetLabel(form.value));
      return;
    }
    sending.value = true;
    try {
      const result = request.op === 'publish' ? await api.call('publish', request.input) : await api.call('topics/produce', request.input);
      outcome.value = { at: Date.now(), target: targetLabel(form.value), result };
      void loadHistory();
    } catch (e) {
      error.value = `Not sent: ${describeError(e)}`;
      errorField.value = (e as { field?: string }).field ?? null;
    } finally {
      sending.value = false;
    }
  }

  /** A publish of many copies runs as a job: progress, rate and Cancel while it runs, its result at the end. */
  const job = shallowRef<PublishJob | null>(null);
  let stopWatching: (() => void) | null = null;

  function watchJob(id: string, target: string) {
    stopWatching?.();
    let timer: ReturnType<typeof setInterval> | null = null;
    let unsubscribe: (() => void) | null = null;
    const stop = () => {
      unsubscribe?.();
      unsubscribe = null;
      if (timer) clearInterval(timer);
      timer = null;
    };
    stopWatching = stop;
    const update = (j: PublishJob) => {
      if (j.id !== id) return;
      const cur = job.value;
      // A late stream event must not overwrite a newer state.
      if (cur && cur.id === j.id && FINAL_JOB_STATES.includes(cur.state) && !FINAL_JOB_STATES.includes(j.state)) return;
      job.value = j;
      if (FINAL_JOB_STATES.includes(j.state)) {
        stop();
        sending.value = false;
        if (j.result) outcome.value = { at: j.finishedAt ?? Date.now(), target, result: j.result };
        if (j.state === 'failed') error.value = `Not all sent: ${j.error ?? 'the publish failed'}`;
        void loadHistory();
      }
    };
    unsubscribe = api.subscribe('publishJobs', { id }, update);
    // The stream is throttled and may be missed across a reconnect; a slow poll guarantees the end state is seen.
    timer = setInterval(() => {
      api.call('publish/job', { id }).then(update, () => undefined);
    }, 1000);
  }

  /** Many copies to a queue run as `publish/start`, to a topic as `topics/produceStart`: the same job, followed and cancelled alike. */
  async function startJob(request: ReturnType<typeof build>, target: string) {
    sending.value = true;
    try {
      const j = request.op === 'publish' ? await api.call('publish/start', request.input) : await api.call('topics/produceStart', request.input);
      job.value = j;
      watchJob(j.id, target);
    } catch (e) {
      sending.value = false;
      error.value = `Not sent: ${describeError(e)}`;
      errorField.value = (e as { field?: string }).field ?? null;
    }
  }

  async function cancelJob() {
    const j = job.value;
    if (!j) return;
    try {
      job.value = await api.call('publish/cancel', { id: j.id });
    } catch (e) {
      error.value = `Could not cancel: ${describeError(e)}`;
    }
  }

  /** Pretty-prints the body; a bare {{i}} stands in as a marker string while formatting. */
  function formatBody() {
    const marker = '"\\u0000i\\u0000"';
    try {
      const parsed = JSON.parse(form.value.body.replace(/\{\{i\}\}/g, marker)) as unknown;
      form.value.body = JSON.stringify(parsed, null, 2).replace(/"\\u0000i\\u0000"/g, '{{i}}') + '\n';
    } catch {
      // Invalid JSON is left as typed; the inline message says where it breaks.
    }
  }

  /** Set by "publish again": the pre-filled target wins over the resource selected elsewhere. */
  const prefilled = ref(false);

  function prefillFromMessage(m: MessageView) {
    const f = emptyForm();
    const props = m.properties;
    // The default exchange routes by queue name: show it as a queue target.
    f.targetKind = m.exchange === '' ? 'queue' : 'exchange';
    f.exchange = m.exchange;
    f.routingKey = m.routingKey;
    f.queue = m.exchange === '' ? m.routingKey : '';
    f.body = toText(m.body, m.bodyEncoding);
    f.bodyMode = looksJson(f.body) ? 'json' : 'text';
    const headers = { ...(props.headers ?? {}) };
    if (typeof headers['x-delay'] === 'number') {
      f.xDelay = headers['x-delay'];
      delete headers['x-delay'];
    }
    f.headers = headerRows(headers);
    f.contentType = props.contentType ?? '';
    f.correlationId = props.correlationId ?? '';
    f.replyTo = props.replyTo ?? '';
    f.priority = props.priority ?? null;
    f.expiration = props.expiration ?? '';
    f.persistent = props.deliveryMode !== 1;
    f.type = props.type ?? '';
    f.appId = props.appId ?? '';
    form.value = f;
    outcome.value = null;
    prefilled.value = true;
  }

  function prefillFromRecord(topic: string, r: RecordView) {
    const f = emptyForm();
    f.targetKind = 'topic';
    f.topic = topic;
    f.key = r.key ?? '';
    f.body = toText(r.value, r.valueEncoding);
    f.bodyMode = looksJson(f.body) ? 'json' : 'text';
    f.headers = headerRows(r.headers);
    form.value = f;
    outcome.value = null;
    prefilled.value = true;
  }

  function setTarget(kind: 'queue' | 'topic' | 'exchange', name: string) {
    form.value.targetKind = kind;
    if (kind === 'queue') form.value.queue = name;
    else if (kind === 'topic') form.value.topic = name;
    else form.value.exchange = name;
  }

  async function loadTemplates() {
    try {
      templates.value = await api.call('templates/list', {});
      listError.value = null;
    } catch (e) {
      listError.value = `Could not load templates: ${describeError(e)}`;
    }
  }

  async function saveTemplate(name: string, id?: string) {
    const saved = await api.call('templates/save', { ...(id ? { id } : {}), name, payload: { form: JSON.parse(JSON.stringify(form.value)) as unknown } });
    await loadTemplates();
    return saved;
  }

  function applyTemplate(t: Template) {
    const payload = t.payload as { form?: Partial<PublishForm> };
    form.value = fit({ ...emptyForm(), ...(payload.form ?? {}) });
  }

  async function deleteTemplate(id: string) {
    await api.call('templates/delete', { id });
    await loadTemplates();
  }

  async function loadHistory() {
    try {
      // The history is kept for every connection; each connection's publisher lists its own.
      history.value = (await api.call('publishHistory/list', { limit: 500 })).filter((h) => h.connectionId === splitScope(connectionId).connectionId).slice(0, 100);
    } catch (e) {
      listError.value = `Could not load the publish history: ${describeError(e)}`;
    }
  }

  /** Refills the form from a history entry (the payload is what was sent, without the connection). */
  function applyHistory(h: HistoryEntry) {
    const p = h.payload as Record<string, unknown>;
    const f = emptyForm();
    if (typeof p.topic === 'string') {
      f.targetKind = 'topic';
      f.topic = p.topic;
      f.key = typeof p.key === 'string' ? p.key : '';
      f.partition = typeof p.partition === 'number' ? p.partition : null;
      f.body = typeof p.value === 'string' ? p.value : '';
      f.headers = headerRows(p.headers as Record<string, unknown> | undefined);
    } else {
      const props = (p.properties ?? {}) as MessageProperties;
      f.targetKind = p.exchange === '' ? 'queue' : 'exchange';
      f.exchange = String(p.exchange ?? '');
      f.routingKey = String(p.routingKey ?? '');
      f.queue = p.exchange === '' ? String(p.routingKey ?? '') : '';
      f.body = typeof p.body === 'string' ? p.body : '';
      const headers = { ...(props.headers ?? {}) };
      if (typeof headers['x-delay'] === 'number') {
        f.xDelay = headers['x-delay'];
        delete headers['x-delay'];
      }
      f.headers = headerRows(headers);
      f.contentType = props.contentType ?? '';
      f.autoMessageId = !props.messageId || props.messageId === '{{uuid}}';
      f.messageId = f.autoMessageId ? '' : (props.messageId ?? '');
      f.correlationId = props.correlationId ?? '';
      f.replyTo = props.replyTo ?? '';
      f.priority = props.priority ?? null;
      f.expiration = props.expiration ?? '';
      f.persistent = props.deliveryMode !== 1;
    }
    f.count = typeof p.count === 'number' ? p.count : 1;
    f.bodyMode = looksJson(jsonForValidation(f.body)) ? 'json' : 'text';
    form.value = fit(f);
  }

  /**
   * Publishes each line of an NDJSON file to the form's target. A line is a
   * message object ({ body, routingKey?, exchange?, properties?, headers? } or
   * a record { key?, value, headers? }); any other JSON value is the body.
   */
  async function importNdjson(text: string) {
    const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
    importStop = false;
    importing.value = { done: 0, total: lines.length, failed: 0, errors: [] };
    const base = form.value;
    for (let i = 0; i < lines.length && !importStop; i++) {
      const state: { done: number; total: number; failed: number; errors: string[] } = importing.value;
      try {
        const parsed = JSON.parse(lines[i]!) as unknown;
        const f: PublishForm = { ...base, count: 1, bodyMode: 'text' };
        if (parsed && typeof parsed === 'object' && !Array.isArray(parsed) && ('body' in parsed || 'value' in parsed)) {
          const o = parsed as Record<string, unknown>;
          const raw = 'body' in o ? o.body : o.value;
          f.body = typeof raw === 'string' ? raw : JSON.stringify(raw);
          if (typeof o.routingKey === 'string' && f.targetKind === 'exchange') f.routingKey = o.routingKey;
          if (typeof o.key === 'string') f.key = o.key;
          const props = (o.properties ?? {}) as MessageProperties;
          const hdrs = (o.headers ?? props.headers) as Record<string, unknown> | undefined;
          if (hdrs) f.headers = headerRows(hdrs);
          if (props.contentType) f.contentType = props.contentType;
          if (props.correlationId) f.correlationId = props.correlationId;
        } else f.body = JSON.stringify(parsed);
        const request = build(f);
        if (request.op === 'publish') await api.call('publish', request.input);
        else await api.call('topics/produce', request.input);
      } catch (e) {
        state.failed++;
        if (state.errors.length < 20) state.errors.push(`line ${i + 1}: ${describeError(e)}`);
      }
      state.done = i + 1;
      importing.value = { ...state };
    }
    void loadHistory();
  }

  function stopImport() {
    importStop = true;
  }

  return {
    connectionId,
    targetKinds,
    job,
    cancelJob,
    form,
    prefilled,
    sending,
    error,
    errorField,
    outcome,
    templates,
    history,
    listError,
    importing,
    bodyProblem,
    build,
    send,
    formatBody,
    prefillFromMessage,
    prefillFromRecord,
    setTarget,
    loadTemplates,
    saveTemplate,
    applyTemplate,
    deleteTemplate,
    loadHistory,
    applyHistory,
    importNdjson,
    stopImport,
    targetLabel,
  };
}

const definitions = new Map<string, ReturnType<typeof define>>();
function define(connectionId: string) {
  return defineStore(`publisher:${connectionId}`, () => setup(connectionId));
}

/** The publisher state of a connection (the selected one when none is named). */
export function usePublisher(connectionId: string = useConnections().scopeId) {
  let def = definitions.get(connectionId);
  if (!def) {
    def = define(connectionId);
    definitions.set(connectionId, def);
  }
  return def();
}
