/**
 * Message bodies travel as text with an encoding (`utf8` or `base64`). These
 * helpers turn them into what the detail panel shows: bytes, text, hex and,
 * when it parses, JSON.
 */
import type { BodyEncoding } from '@contract/types';

export function toBytes(body: string | null, encoding: BodyEncoding): Uint8Array {
  if (body === null) return new Uint8Array();
  if (encoding === 'base64') {
    const bin = atob(body);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }
  return new TextEncoder().encode(body);
}

export function toText(body: string | null, encoding: BodyEncoding): string {
  if (body === null) return '';
  if (encoding === 'utf8') return body;
  return new TextDecoder('utf-8', { fatal: false }).decode(toBytes(body, encoding));
}

export type ParsedJson = { ok: true; value: unknown } | { ok: false };

export function parseJson(text: string): ParsedJson {
  const t = text.trimStart();
  // Only objects, arrays and strings are worth a tree; "12" parses but is plain text.
  if (!(t.startsWith('{') || t.startsWith('[') || t.startsWith('"'))) return { ok: false };
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch {
    return { ok: false };
  }
}

/** Classic 16-bytes-a-line dump; long bodies are cut so the panel stays responsive. */
export function hexDump(bytes: Uint8Array, maxBytes = 64 * 1024): string {
  const lines: string[] = [];
  const n = Math.min(bytes.length, maxBytes);
  for (let off = 0; off < n; off += 16) {
    const slice = bytes.subarray(off, Math.min(off + 16, n));
    let hex = '';
    let ascii = '';
    for (let i = 0; i < 16; i++) {
      if (i < slice.length) {
        const b = slice[i]!;
        hex += b.toString(16).padStart(2, '0') + ' ';
        ascii += b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.';
      } else hex += '   ';
      if (i === 7) hex += ' ';
    }
    lines.push(`${off.toString(16).padStart(8, '0')}  ${hex} |${ascii}|`);
  }
  if (bytes.length > n) lines.push(`… ${bytes.length - n} more bytes not shown`);
  return lines.join('\n');
}

/** One line for a list cell: whitespace collapsed, binary shown as such. */
export function preview(body: string | null, encoding: BodyEncoding, max = 200): string {
  if (body === null) return '(null)';
  if (encoding === 'base64') {
    const text = toText(body.slice(0, Math.ceil((max * 4) / 3 / 4) * 4), encoding);
    // Replacement characters mean the bytes are not text.
    if (text.includes('\uFFFD')) return `(binary, base64) ${body.slice(0, max)}`;
    return text.replace(/\s+/g, ' ').slice(0, max);
  }
  return body.slice(0, max * 2).replace(/\s+/g, ' ').slice(0, max);
}

export function headersSummary(headers: Record<string, unknown> | undefined, max = 120): string {
  if (!headers) return '';
  const parts: string[] = [];
  for (const [k, v] of Object.entries(headers)) {
    const value = typeof v === 'string' ? v : Array.isArray(v) ? `[${v.length}]` : typeof v === 'object' && v !== null ? '{…}' : String(v);
    parts.push(`${k}=${value}`);
    if (parts.join(' ').length > max) break;
  }
  const text = parts.join(' ');
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
