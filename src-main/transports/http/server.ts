/**
 * Headless mode's transport: the contract's routes over HTTP, the wire protocol
 * over a WebSocket at /api/ws, and the built renderer as static files. It
 * authenticates, checks Host and Origin, parses, and delegates to the core;
 * it holds no logic of its own.
 *
 * Authentication: `Authorization: Bearer <token>` or the `brokerdeck_token`
 * cookie, which `GET /?token=<token>` sets (HttpOnly, SameSite=Strict) with
 * the page, whose first script takes the token out of the address bar.
 */
import { createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import { createServer, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { extname, join, normalize, sep } from 'node:path';
import { timingSafeEqual } from 'node:crypto';
import { WebSocketServer, type WebSocket } from 'ws';
import { ApiError } from '../../contract/errors.js';
import { routes, type Route } from '../../contract/routes.js';
import type { Core } from '../../core/core.js';
import type { Logger } from '../../ground/logger.js';
import { toApiError } from '../../core/session.js';
import { attachLiveSocket } from './live-socket.js';
import { buildOpenApi } from './openapi.js';

export interface HttpOptions {
  core: Core;
  host: string;
  port: number;
  token: string;
  /** Directory of the built renderer; omitted in API-only tests. */
  staticDir?: string;
  logger: Logger;
  /** Largest request body accepted, in bytes. Message bodies are limited by the broker. */
  maxRequestBytes?: number;
}

export interface HttpServer {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

const COOKIE = 'brokerdeck_token';

/** The renderer's CSP: no inline scripts, no remote origins, connections to itself only. */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
  "form-action 'self'",
].join('; ');

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.woff2': 'font/woff2',
};

interface CompiledRoute extends Route {
  pattern: RegExp;
  params: string[];
}

function compile(route: Route): CompiledRoute {
  const params: string[] = [];
  const source = route.path
    .split('/')
    .map((seg) => {
      if (!seg.startsWith(':')) return seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      params.push(seg.slice(1));
      return '([^/]+)';
    })
    .join('/');
  return { ...route, pattern: new RegExp(`^${source}$`), params };
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * Brokerdeck's cookie from a Cookie header. Cookies are shared by every port of
 * a host, so the header may carry other local apps' cookies, malformed ones
 * included (`other_app=50%`): those are skipped, never decoded.
 */
function tokenCookie(header: string | undefined): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i <= 0 || part.slice(0, i).trim() !== COOKIE) continue;
    try {
      return decodeURIComponent(part.slice(i + 1).trim());
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** decodeURIComponent that answers 400 naming what was malformed instead of throwing URIError. */
function decodePath(text: string, what: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new ApiError('INVALID_ARGUMENT', `${what} has malformed percent-encoding: ${JSON.stringify(text.slice(0, 200))}`, what);
  }
}

/** The request target as a URL; null for one that does not parse (`//`, `http://[`). */
function requestUrl(req: IncomingMessage): URL | null {
  const target = req.url ?? '/';
  // Only origin-form targets: `//host/x` would otherwise be read as another host.
  if (!target.startsWith('/') || target.startsWith('//')) return null;
  try {
    return new URL(target, 'http://localhost');
  } catch {
    return null;
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function sendError(res: ServerResponse, error: ApiError): void {
  // A refused body may still be arriving: close once the answer is out instead of reading it.
  if (error.code === 'TOO_LARGE' || error.code === 'UNSUPPORTED_MEDIA_TYPE') res.setHeader('connection', 'close');
  sendJson(res, error.status, error.toBody());
}

function unauthorized(): ApiError {
  return new ApiError('UNAUTHORIZED', 'missing or wrong token: send "Authorization: Bearer <token>" or open the URL Brokerdeck printed');
}

function tooLarge(limit: number): ApiError {
  return new ApiError('TOO_LARGE', `request body is larger than the limit of ${formatBytes(limit)} (${limit} bytes)`, 'body');
}

function formatBytes(n: number): string {
  return n >= 1024 * 1024 ? `${Math.round(n / 1024 / 1024)} MiB` : `${Math.round(n / 1024)} KiB`;
}

/**
 * A request's JSON body. Bodies are JSON only: a `text/plain` or form body (what a
 * page on another origin can send without a preflight) is refused before it is read.
 */
function readBody(req: IncomingMessage, limit: number): Promise<unknown> {
  const declared = req.headers['content-length'];
  const chunked = req.headers['transfer-encoding'] !== undefined;
  if (!chunked && (declared === undefined || declared === '0')) return Promise.resolve({});
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json') {
    return Promise.reject(new ApiError('UNSUPPORTED_MEDIA_TYPE', `a request body must be JSON sent as "content-type: application/json" (got ${JSON.stringify(type || 'none')})`, 'content-type'));
  }
  if (declared !== undefined && Number(declared) > limit) return Promise.reject(tooLarge(limit));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    req.on('data', (chunk: Buffer) => {
      if (refused) return;
      size += chunk.length;
      if (size > limit) {
        // Answered at once; what the client still sends is read and dropped.
        refused = true;
        chunks.length = 0;
        reject(tooLarge(limit));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (refused) return;
      if (size === 0) return resolve({});
      const text = Buffer.concat(chunks).toString('utf8');
      try {
        resolve(JSON.parse(text));
      } catch (error) {
        reject(new ApiError('INVALID_ARGUMENT', `request body is not valid JSON: ${(error as Error).message}`, 'body'));
      }
    });
    req.on('error', reject);
  });
}

/** Query values: repeated keys become arrays, `true`/`false` stay strings for the schema to coerce. */
function queryObject(search: URLSearchParams): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of search) out[k] = v;
  return out;
}

export function startHttpServer(options: HttpOptions): Promise<HttpServer> {
  const { core, token, logger } = options;
  const compiled = routes.map(compile);
  const maxRequestBytes = options.maxRequestBytes ?? 192 * 1024 * 1024;
  let allowedHosts = new Set<string>();
  const openapi = buildOpenApi(core.version);

  const hostAllowed = (req: IncomingMessage): boolean => {
    const host = req.headers.host;
    if (!host || !allowedHosts.has(host.toLowerCase())) return false;
    const origin = req.headers.origin;
    // `Origin: null` comes from sandboxed frames, file: pages and data: URLs: never this page.
    if (origin !== undefined) {
      try {
        const u = new URL(origin);
        if (!allowedHosts.has(u.host.toLowerCase()) || u.protocol !== 'http:') return false;
      } catch {
        return false;
      }
    }
    return true;
  };

  const authenticated = (req: IncomingMessage): boolean => {
    const auth = req.headers.authorization;
    if (auth?.startsWith('Bearer ') && safeEqual(auth.slice(7).trim(), token)) return true;
    const cookie = tokenCookie(req.headers.cookie);
    return cookie !== undefined && safeEqual(cookie, token);
  };

  /**
   * The page's bundles as `Link` preloads, so the browser fetches them while it is still
   * setting the page up rather than once it has parsed the HTML.
   */
  const preloadLinks = (html: string): string => {
    const links: string[] = [];
    for (const m of html.matchAll(/<script type="module" crossorigin src="\.\/(assets\/[\w.-]+\.js)"/g)) links.push(`</${m[1]}>; rel=modulepreload; crossorigin`);
    for (const m of html.matchAll(/<link rel="stylesheet" crossorigin href="\.\/(assets\/[\w.-]+\.css)"/g)) links.push(`</${m[1]}>; rel=preload; as=style; crossorigin`);
    return links.join(', ');
  };

  const serveStatic = (req: IncomingMessage, res: ServerResponse, pathname: string, extra: Record<string, string> = {}) => {
    const dir = options.staticDir;
    if (!dir || !existsSync(dir)) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('The renderer is not built: run `npm run build`.');
      return;
    }
    const rel = normalize(decodePath(pathname, 'path')).replace(/^([/\\])+/, '');
    let file = join(dir, rel);
    if (!file.startsWith(dir + sep) && file !== dir) {
      res.writeHead(403).end();
      return;
    }
    if (!existsSync(file) || statSync(file).isDirectory()) file = join(dir, 'index.html');
    const type = MIME[extname(file)] ?? 'application/octet-stream';
    const headers: Record<string, string> = {
      'content-type': type,
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      'cross-origin-opener-policy': 'same-origin',
    };
    if (type.startsWith('text/html')) {
      headers['content-security-policy'] = CONTENT_SECURITY_POLICY;
      headers['x-frame-options'] = 'DENY';
      headers['cache-control'] = 'no-store';
      const html = readFileSync(file, 'utf8');
      const link = preloadLinks(html);
      if (link) headers['link'] = link;
      res.writeHead(200, { ...headers, ...extra });
      res.end(req.method === 'HEAD' ? undefined : html);
      return;
    } else if (rel.startsWith('assets' + sep)) {
      // Bundles carry a content hash in their names.
      headers['cache-control'] = 'public, max-age=31536000, immutable';
    } else {
      // boot.js keeps its name from one version to the next.
      headers['cache-control'] = 'no-cache';
    }
    res.writeHead(200, { ...headers, ...extra });
    if (req.method === 'HEAD') res.end();
    else createReadStream(file).pipe(res);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = requestUrl(req);
    if (!url) {
      sendError(res, new ApiError('INVALID_ARGUMENT', 'the request target is not a path', 'path'));
      return;
    }
    if (!hostAllowed(req)) {
      sendError(res, new ApiError('FORBIDDEN', 'Host or Origin is not the address Brokerdeck listens on', 'host'));
      return;
    }
    const pathname = url.pathname;

    if (!pathname.startsWith('/api/')) {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        sendError(res, new ApiError('NOT_FOUND', `no route for ${req.method} ${pathname}`));
        return;
      }
      const given = url.searchParams.get('token');
      if (given !== null) {
        if (!safeEqual(given, token)) {
          sendError(res, new ApiError('UNAUTHORIZED', 'the token in the address is wrong: use the URL Brokerdeck printed when it started'));
          return;
        }
        // The page itself, with the cookie: a redirect would cost the first start a round
        // trip. The page's first script (boot.js) takes the token out of the address bar.
        serveStatic(req, res, pathname, { 'set-cookie': `${COOKIE}=${encodeURIComponent(token)}; HttpOnly; SameSite=Strict; Path=/` });
        return;
      }
      serveStatic(req, res, pathname);
      return;
    }

    if (pathname === '/api/openapi.json' && req.method === 'GET') {
      if (!authenticated(req)) return sendError(res, unauthorized());
      sendJson(res, 200, openapi);
      return;
    }

    let route: CompiledRoute | undefined;
    let match: RegExpExecArray | null = null;
    let pathMatched = false;
    for (const candidate of compiled) {
      const m = candidate.pattern.exec(pathname);
      if (!m) continue;
      pathMatched = true;
      if (candidate.method === req.method) {
        route = candidate;
        match = m;
        break;
      }
    }
    if (!route || !match) {
      if (pathMatched) sendError(res, new ApiError('NOT_FOUND', `${req.method} is not allowed on ${pathname}`));
      else sendError(res, new ApiError('NOT_FOUND', `no route for ${req.method} ${pathname}`));
      return;
    }
    if (!route.public && !authenticated(req)) {
      sendError(res, unauthorized());
      return;
    }

    try {
      const params: Record<string, string> = {};
      route.params.forEach((p, i) => {
        params[p] = decodePath(match[i + 1]!, p);
      });
      const body = req.method === 'GET' || req.method === 'HEAD' ? {} : await readBody(req, maxRequestBytes);
      if (typeof body !== 'object' || body === null || Array.isArray(body)) {
        throw new ApiError('INVALID_ARGUMENT', 'request body must be a JSON object', 'body');
      }
      // Path parameters win: a body cannot redirect a call to another resource.
      const input = { ...queryObject(url.searchParams), ...(body as Record<string, unknown>), ...params };
      const value = await core.call(route.op, input);
      sendJson(res, route.status ?? 200, value);
    } catch (error) {
      const apiError = toApiError(error);
      if (apiError.code === 'INTERNAL') logger.error('request failed', { method: req.method, path: pathname, error: apiError.message });
      sendError(res, apiError);
    }
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!(error instanceof ApiError)) logger.error('unhandled request error', { error: String(error) });
      if (!res.headersSent) sendError(res, error instanceof ApiError ? error : new ApiError('INTERNAL', 'internal error'));
      else res.end();
    });
  });

  // What Node's parser refuses before a handler runs (a request line or headers over
  // 16 KiB, bytes that are not HTTP) is answered in JSON like every other error.
  server.on('clientError', (error: NodeJS.ErrnoException, socket) => {
    if (!socket.writable || (error.code === 'ECONNRESET' && !socket.readable)) return socket.destroy();
    const tooLarge = error.code === 'HPE_HEADER_OVERFLOW';
    const status = tooLarge ? 431 : 400;
    const body = JSON.stringify(
      tooLarge
        ? { error: { code: 'TOO_LARGE', message: 'the request line and headers are larger than 16 KiB', field: 'headers' } }
        : { error: { code: 'INVALID_ARGUMENT', message: `the request is not valid HTTP (${error.code ?? 'parse error'})` } },
    );
    socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
  });

  // Live samples run to about 250 bytes a queue each second: frames over 64 KiB are
  // compressed (fast level), which matters when the page is opened through a tunnel.
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: maxRequestBytes,
    perMessageDeflate: { threshold: 64 * 1024, zlibDeflateOptions: { level: 1 } },
  });
  server.on('upgrade', (req, socket, head) => {
    // Nothing a client sends here may throw out of this handler: it runs before any
    // check, and an exception would end the process.
    const reject = (status: number, code: string, text: string) => {
      socket.end(`HTTP/1.1 ${status} ${text}\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n${JSON.stringify({ error: { code, message: text } })}`);
    };
    socket.on('error', () => socket.destroy());
    try {
      const url = requestUrl(req);
      if (!url) return reject(400, 'INVALID_ARGUMENT', 'Bad Request');
      if (url.pathname !== '/api/ws') return reject(404, 'NOT_FOUND', 'Not Found');
      if (!hostAllowed(req)) return reject(403, 'FORBIDDEN', 'Forbidden');
      if (!authenticated(req)) return reject(401, 'UNAUTHORIZED', 'Unauthorized');
      wss.handleUpgrade(req, socket, head, (ws: WebSocket) => attachLiveSocket(core, ws));
    } catch (error) {
      logger.error('WebSocket upgrade failed', { error: String(error) });
      socket.destroy();
    }
  });

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : options.port;
      const hostForUrl = options.host.includes(':') ? `[${options.host}]` : options.host;
      allowedHosts = new Set([`${hostForUrl}:${port}`.toLowerCase()]);
      if (['127.0.0.1', '::1', 'localhost'].includes(options.host)) allowedHosts.add(`localhost:${port}`);
      resolve({
        url: `http://${hostForUrl}:${port}`,
        port,
        close: () =>
          new Promise<void>((done) => {
            for (const client of wss.clients) client.terminate();
            wss.close();
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}
