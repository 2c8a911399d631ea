/**
 * A small structured logger. Fields whose names look like secrets are replaced
 * before anything is written, so a password in a connection object can never
 * reach a log line.
 */
export interface Logger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

const SECRET = /pass(word)?|secret|token|credential|authorization|cookie|key$/i;

export function redact(fields: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (!fields) return undefined;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) {
    if (SECRET.test(k)) out[k] = '[redacted]';
    else if (typeof v === 'string') out[k] = v.replace(/(\w+:\/\/[^:/@\s]+:)[^@\s]+@/g, '$1[redacted]@');
    else out[k] = v;
  }
  return out;
}

export function consoleLogger(stream: NodeJS.WritableStream = process.stderr): Logger {
  const write = (level: string, message: string, fields?: Record<string, unknown>) => {
    const extra = redact(fields);
    stream.write(`${new Date().toISOString()} ${level} ${message}${extra ? ' ' + JSON.stringify(extra) : ''}\n`);
  };
  return {
    info: (m, f) => write('info', m, f),
    warn: (m, f) => write('warn', m, f),
    error: (m, f) => write('error', m, f),
  };
}

export const silentLogger: Logger = { info() {}, warn() {}, error() {} };
