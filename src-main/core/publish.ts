/**
 * Publishing through the core: every connection's publish and produce pass
 * here, so placeholders ({{i}}, {{uuid}}, {{now}}) mean the same on each. The
 * message is compiled once into a template (ground/placeholders) that the
 * connection asks for each copy; a template that cannot be expanded (a
 * number-typed header whose text is no number) is refused before anything is
 * sent, naming the field.
 */
import { ApiError } from '../contract/errors.js';
import type { ParsedInput } from '../contract/operations.js';
import type { MessageProperties, PublishJob, PublishResult } from '../contract/types.js';
import type { Args, PublishControl } from '../connectors/connector.js';
import { decodeBytes } from '../connectors/encoding.js';
import { compileMessage, compileRecord, type MessageTemplate, type RecordTemplate } from '../ground/placeholders.js';
import { Jobs } from '../jobs/jobs.js';
import type { CoreContext } from './context.js';

function asApiError(error: unknown, field: string): ApiError {
  if (error instanceof ApiError) return error;
  const e = error as { message?: string; field?: string };
  return new ApiError('INVALID_ARGUMENT', String(e?.message ?? error), e?.field ?? field);
}

export function messageTemplate(i: ParsedInput<'publish'>): MessageTemplate<MessageProperties> {
  let body: Buffer;
  try {
    body = decodeBytes(i.body, i.bodyEncoding);
  } catch (error) {
    throw asApiError(error, 'body');
  }
  try {
    return compileMessage(body, i.properties);
  } catch (error) {
    throw asApiError(error, 'properties.headers');
  }
}

export function recordTemplate(i: ParsedInput<'topics/produce'>): RecordTemplate {
  let value: { text: string } | { bytes: Buffer } | null = null;
  if (i.value !== null) {
    try {
      value = i.valueEncoding === 'utf8' ? { text: i.value } : { bytes: decodeBytes(i.value, i.valueEncoding, 'value') };
    } catch (error) {
      throw asApiError(error, 'value');
    }
  }
  return compileRecord(i.key ?? null, value, i.headers);
}

/**
 * Publish jobs: a publish of many copies followed as a job on the shared job
 * machinery (src-main/jobs): an id, throttled progress (sent, confirmed,
 * rate), cancel, an audit row when it ends, the same retention as re-drives.
 * One registry per core, for every connection.
 */
const registries = new WeakMap<CoreContext, Jobs<PublishJob, PublishJob>>();

export function publishJobs(ctx: CoreContext): Jobs<PublishJob, PublishJob> {
  let jobs = registries.get(ctx);
  if (!jobs) {
    jobs = new Jobs<PublishJob, PublishJob>({
      idPrefix: 'pj-',
      log: ctx.logger,
      view: (job) => ({ ...job, ...(job.result ? { result: { ...job.result, routed: { ...job.result.routed } } } : {}) }),
      describe: (job) => ({ connectionId: job.connectionId, action: 'publish', source: '', target: job.target, count: job.confirmed, selection: `${job.total} copies` }),
      audit: (entry) => ctx.deps.audit.record(entry),
      failed: (job, error) => {
        job.error = error instanceof Error ? error.message : String(error);
      },
    });
    registries.set(ctx, jobs);
  }
  return jobs;
}

/**
 * Starts a publish job and answers with it at once. `run` publishes (honouring
 * the control's signal and reporting progress through it where the connection
 * can); `done` runs with the result when the publish ends normally or by
 * cancel (the publish history).
 */
export function startPublishJob(
  ctx: CoreContext,
  start: { connectionId: string; target: string; total: number },
  run: (control: PublishControl) => Promise<PublishResult>,
  done: (result: PublishResult) => void,
): PublishJob {
  const jobs = publishJobs(ctx);
  const job: PublishJob = {
    id: jobs.newId(),
    kind: 'publish',
    connectionId: start.connectionId,
    target: start.target,
    state: 'pending',
    total: start.total,
    sent: 0,
    confirmed: 0,
    ratePerSecond: 0,
    startedAt: Date.now(),
    finishedAt: null,
    error: null,
    result: null,
  };
  const control = jobs.add(job);
  control.running();
  const rate = () => {
    const seconds = (Date.now() - job.startedAt) / 1000;
    return seconds > 0 ? Math.round(job.confirmed / seconds) : 0;
  };
  void control.run(async (c) => {
    const result = await run({
      signal: c.signal,
      progress(sent, confirmed) {
        job.sent = sent;
        job.confirmed = confirmed;
        job.ratePerSecond = rate();
        c.progress();
      },
    });
    job.sent = result.published;
    job.confirmed = result.published;
    job.ratePerSecond = rate();
    job.result = result;
    done(result);
  });
  return jobs.get(job.id) ?? job;
}

/** Asks a publish job to stop and waits (briefly) for its final state. */
export async function cancelPublishJob(ctx: CoreContext, id: string): Promise<PublishJob> {
  const jobs = publishJobs(ctx);
  if (!jobs.cancel(id)) throw new ApiError('NOT_FOUND', `publish job "${id}" does not exist`, 'id');
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([jobs.settled(id), new Promise((r) => (timer = setTimeout(r, 5_000)))]);
  clearTimeout(timer);
  return jobs.get(id)!;
}

export function getPublishJob(ctx: CoreContext, id: string): PublishJob {
  const job = publishJobs(ctx).get(id);
  if (!job) throw new ApiError('NOT_FOUND', `publish job "${id}" does not exist`, 'id');
  return job;
}
