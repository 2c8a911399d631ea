#!/usr/bin/env node
/**
 * Generates the Kafka protocol codecs in src-main/protocols/kafka/generated/ from
 * Apache Kafka's own message schemas (clients/src/main/resources/common/message/*.json,
 * kept in ../shared/protocol-specs/kafka/message/), as Kafka's MessageGenerator does
 * for Java: one file per message, one reader and one writer per struct, each version
 * condition taken from the schema's `versions`, `nullableVersions`, `taggedVersions`
 * and `flexibleVersions`.
 *
 *   node scripts/codegen-kafka.mjs           writes the files
 *   node scripts/codegen-kafka.mjs --check   exits 1 when a committed file differs
 *
 * Rules the output relies on (protocol.html, "Protocol Primitive Types"):
 * - In a flexible version, strings, bytes, records and arrays are "compact"
 *   (uvarint length + 1) unless the field says `"flexibleVersions": "none"`,
 *   and every struct ends with its tagged fields.
 * - A field present in `taggedVersions` is written as a tagged field in those
 *   versions (only when it differs from its default), never in line.
 * - A nullable struct (not an array) is an int8 −1 for null, 1 for present.
 * - `records` is kept as bytes: the record batches are the broker's to parse.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const specDir = process.env.KAFKA_SPEC_DIR ?? path.resolve(root, '../shared/protocol-specs/kafka/message');
const outDir = path.join(root, 'src-main/protocols/kafka/generated');
const SCRIPT = 'scripts/codegen-kafka.mjs';

// ---- versions ---------------------------------------------------------------

/** "3+", "1-4", "2", "none" → { lo, hi } (hi Infinity), or null for none. */
export function range(spec) {
  if (spec === undefined || spec === 'none') return null;
  const s = String(spec);
  if (s.endsWith('+')) return { lo: Number(s.slice(0, -1)), hi: Infinity };
  const [a, b] = s.split('-');
  return { lo: Number(a), hi: Number(b ?? a) };
}

function intersect(a, b) {
  if (!a || !b) return null;
  const lo = Math.max(a.lo, b.lo);
  const hi = Math.min(a.hi, b.hi);
  return lo <= hi ? { lo, hi } : null;
}

/** A JS condition on `v` for a range within the message's valid versions. */
function cond(r, valid) {
  if (!r) return 'false';
  const lo = r.lo <= valid.lo;
  const hi = r.hi >= valid.hi;
  if (lo && hi) return 'true';
  if (r.lo === r.hi) return `v === ${r.lo}`;
  if (lo) return `v <= ${r.hi}`;
  if (hi) return `v >= ${r.lo}`;
  return `(v >= ${r.lo} && v <= ${r.hi})`;
}

function describe(r) {
  if (!r) return 'none';
  if (r.hi === Infinity) return `v${r.lo}+`;
  return r.lo === r.hi ? `v${r.lo}` : `v${r.lo}-${r.hi}`;
}

// ---- schema model -------------------------------------------------------------

const PRIMITIVES = new Set(['bool', 'int8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'float64', 'string', 'bytes', 'records', 'uuid']);

function camel(name) {
  return name[0].toLowerCase() + name.slice(1);
}

export function load(file) {
  const text = fs.readFileSync(file, 'utf8').replace(/^\s*\/\/.*$/gm, '');
  return JSON.parse(text);
}

/**
 * Flattens a message's structs: every inline struct and common struct gets one
 * entry, by name. Inline structs of the same name must agree (Kafka requires it).
 */
export function collectStructs(msg) {
  const structs = new Map();
  const common = new Map((msg.commonStructs ?? []).map((s) => [s.name, s]));
  const visit = (name, fields, versions) => {
    if (structs.has(name)) return;
    const s = { name, fields: [], versions };
    structs.set(name, s);
    for (const f of fields) s.fields.push(field(f));
  };
  const field = (f) => {
    const isArray = f.type.startsWith('[]');
    const inner = isArray ? f.type.slice(2) : f.type;
    const primitive = PRIMITIVES.has(inner);
    if (!primitive) {
      const def = f.fields ?? common.get(inner)?.fields;
      if (!def) throw new Error(`${msg.name}: struct ${inner} has no definition`);
      visit(inner, def, range(f.versions));
    }
    return {
      name: f.name,
      prop: camel(f.name),
      type: f.type,
      isArray,
      inner,
      primitive,
      versions: range(f.versions),
      nullable: range(f.nullableVersions),
      tagged: f.tag !== undefined ? range(f.taggedVersions) : null,
      tag: f.tag,
      flexibleNone: f.flexibleVersions === 'none',
      default: f.default,
      about: f.about,
    };
  };
  visit(msg.name, msg.fields, range(msg.validVersions));
  return structs;
}

// ---- TypeScript types and defaults ---------------------------------------------

function scalarType(t) {
  switch (t) {
    case 'bool':
      return 'boolean';
    case 'int64':
      return 'bigint';
    case 'string':
    case 'uuid':
      return 'string';
    case 'bytes':
    case 'records':
      return 'Buffer';
    default:
      return 'number';
  }
}

function tsType(f) {
  const base = f.primitive ? scalarType(f.inner) : f.inner;
  const t = f.isArray ? `${base.includes(' ') ? `(${base})` : base}[]` : base;
  return f.nullable ? `${t} | null` : t;
}

function defaultExpr(f) {
  const d = f.default;
  if (f.isArray) return d === 'null' ? 'null' : '[]';
  if (!f.primitive) return d === 'null' || f.nullable ? 'null' : `default${f.inner}()`;
  if (d === 'null') return 'null';
  switch (f.inner) {
    case 'bool':
      return String(String(d).toLowerCase() === 'true');
    case 'int64':
      return `${d === undefined ? 0 : BigInt(d)}n`;
    case 'string':
      return JSON.stringify(d ?? '');
    case 'uuid':
      return 'ZERO_UUID';
    case 'bytes':
    case 'records':
      return f.nullable && d === undefined ? 'null' : 'EMPTY_BYTES';
    default:
      return d === undefined ? '0' : String(Number(d));
  }
}

// ---- readers and writers -------------------------------------------------------

function readScalar(t, compact, nullable) {
  switch (t) {
    case 'string':
      return compact ? (nullable ? 'r.compactNullableString()' : 'r.compactString()') : nullable ? 'r.nullableString()' : 'r.string()';
    case 'bytes':
    case 'records':
      return compact ? (nullable ? 'r.compactNullableBytes()' : 'r.compactBytes()') : nullable ? 'r.nullableBytes()' : 'r.bytes()';
    default:
      return `r.${t}()`;
  }
}

function writeScalar(t, x, compact) {
  switch (t) {
    case 'string':
      return `w.string(${x}, ${compact})`;
    case 'bytes':
    case 'records':
      return `w.bytes(${x}, ${compact})`;
    default:
      return `w.${t}(${x})`;
  }
}

/** The reading expression of one field, given whether the version is flexible (`f` in the code). */
function readExpr(field, valid) {
  const nullableCond = cond(intersect(field.nullable, valid), valid);
  const compact = field.flexibleNone ? 'false' : 'flexible';
  if (field.isArray) {
    const item = field.primitive ? readScalar(field.inner, 'false', false) : `read${field.inner}(r, v)`;
    // Array elements of a primitive type are never compact-prefixed themselves except strings/bytes.
    const itemExpr = field.primitive && (field.inner === 'string' || field.inner === 'bytes') ? `(flexible ? ${readScalar(field.inner, true, false)} : ${readScalar(field.inner, false, false)})` : item;
    const nullable = nullableCond === 'false' ? 'false' : nullableCond;
    const e = `r.array(${compact}, ${nullable}, () => ${itemExpr})`;
    return nullable === 'false' ? `${e}!` : e;
  }
  if (!field.primitive) {
    if (nullableCond === 'false') return `read${field.inner}(r, v)`;
    return `(${nullableCond} ? (r.int8() < 0 ? null : read${field.inner}(r, v)) : read${field.inner}(r, v))`;
  }
  if (field.inner === 'string' || field.inner === 'bytes' || field.inner === 'records') {
    const variants = (c) => (nullableCond === 'false' ? readScalar(field.inner, c, false) : nullableCond === 'true' ? readScalar(field.inner, c, true) : `(${nullableCond} ? ${readScalar(field.inner, c, true)} : ${readScalar(field.inner, c, false)})`);
    if (field.flexibleNone) return variants(false);
    return `(flexible ? ${variants(true)} : ${variants(false)})`;
  }
  return readScalar(field.inner, false, false);
}

function writeStmt(field, x, valid) {
  const compact = field.flexibleNone ? 'false' : 'flexible';
  if (field.isArray) {
    let item;
    if (field.primitive) item = field.inner === 'string' || field.inner === 'bytes' ? writeScalar(field.inner, 'e', 'flexible') : writeScalar(field.inner, 'e', false);
    else item = `write${field.inner}(w, v, e)`;
    return `w.array((${x} === undefined ? ${field.default === 'null' ? 'null' : '[]'} : ${x}) as any[] | null, ${compact}, (e) => ${item});`;
  }
  if (!field.primitive) {
    if (!field.nullable) return `write${field.inner}(w, v, ${x} ?? {});`;
    // A nullable struct carries an int8 marker in the versions where it may be null.
    const nullableCond = cond(intersect(field.nullable, valid), valid);
    const value = `(${x} === undefined ? ${field.default === 'null' ? 'null' : '{}'} : ${x})`;
    return `{ const s = ${value}; if (${nullableCond}) { if (s === null) w.int8(-1); else { w.int8(1); write${field.inner}(w, v, s); } } else write${field.inner}(w, v, s ?? {}); }`;
  }
  const d = defaultExpr(field).replace(/^default\w+\(\)$/, '{}');
  const value = d === 'null' || field.nullable ? `(${x} === undefined ? ${d} : ${x})` : `(${x} ?? ${d})`;
  if (field.inner === 'string' || field.inner === 'bytes' || field.inner === 'records') return `${writeScalar(field.inner, value, compact)};`;
  if (field.inner === 'int64') return `w.int64(${value});`;
  return `${writeScalar(field.inner, value, false)};`;
}

function generateStruct(s, valid, flexibleRange, lines) {
  const fields = s.fields;
  lines.push('');
  lines.push(`/**`);
  lines.push(` * ${s.name}${s.name === s.name ? '' : ''}: its fields on the wire, in order (tagged ones last, by tag).`);
  for (const f of fields) {
    const inLine = f.tagged ? `${describe(f.versions)}, tagged ${f.tag} in ${describe(f.tagged)}` : describe(f.versions);
    const nul = f.nullable ? `, nullable ${describe(f.nullable)}` : '';
    lines.push(` *   ${f.name.padEnd(28)} ${f.type.padEnd(16)} ${inLine}${nul}`);
  }
  lines.push(` */`);
  lines.push(`export interface ${s.name} {`);
  for (const f of fields) {
    if (f.about) lines.push(`  /** ${f.about.replace(/\*\//g, '*\\/')} */`);
    lines.push(`  ${f.prop}: ${tsType(f)};`);
  }
  lines.push('}');
  lines.push('');
  lines.push(`export function default${s.name}(): ${s.name} {`);
  lines.push(`  return { ${fields.map((f) => `${f.prop}: ${defaultExpr(f)}`).join(', ')} };`);
  lines.push('}');
  lines.push('');
  // reader
  const uses = (body) => body;
  lines.push(`export function read${s.name}(r: Reader, v: number): ${s.name} {`);
  lines.push(`  const flexible = ${cond(flexibleRange, valid)};`);
  lines.push(`  const o = default${s.name}();`);
  for (const f of fields) {
    const regular = f.tagged ? subtract(f.versions, f.tagged) : f.versions;
    const c = cond(intersect(regular, valid), valid);
    if (c === 'false') continue;
    const stmt = `o.${f.prop} = ${readExpr(f, valid)};`;
    lines.push(c === 'true' ? `  ${stmt}` : `  if (${c}) ${stmt}`);
  }
  const tagged = fields.filter((f) => f.tagged);
  if (flexibleRange) {
    if (tagged.length === 0) lines.push(`  if (flexible) r.taggedFields(() => false);`);
    else {
      lines.push(`  if (flexible) r.taggedFields((tag, r) => {`);
      lines.push(`    switch (tag) {`);
      for (const f of tagged) {
        const c = cond(intersect(f.tagged, valid), valid);
        lines.push(`      case ${f.tag}:`);
        lines.push(`        if (!(${c})) return false;`);
        lines.push(`        o.${f.prop} = ${readExpr(f, valid).replace(/\bflexible\b/g, 'true')};`);
        lines.push(`        return true;`);
      }
      lines.push(`      default:`);
      lines.push(`        return false;`);
      lines.push(`    }`);
      lines.push(`  });`);
    }
  }
  lines.push(`  return o;`);
  lines.push('}');
  lines.push('');
  // writer
  lines.push(`export function write${s.name}(w: Writer, v: number, o: Encodable<${s.name}>): void {`);
  lines.push(`  const flexible = ${cond(flexibleRange, valid)};`);
  for (const f of fields) {
    const regular = f.tagged ? subtract(f.versions, f.tagged) : f.versions;
    const c = cond(intersect(regular, valid), valid);
    if (c === 'false') continue;
    const stmt = writeStmt(f, `o.${f.prop}`, valid);
    lines.push(c === 'true' ? `  ${stmt}` : `  if (${c}) { ${stmt} }`);
  }
  if (flexibleRange) {
    if (tagged.length === 0) lines.push(`  if (flexible) w.uvarint(0);`);
    else {
      lines.push(`  if (flexible) {`);
      lines.push(`    const tagged: Array<[number, (w: Writer) => void]> = [];`);
      for (const f of [...tagged].sort((a, b) => a.tag - b.tag)) {
        const c = cond(intersect(f.tagged, valid), valid);
        const x = `o.${f.prop}`;
        const present = f.isArray ? `${x} !== undefined && (${x} === null ? ${f.default !== 'null'} : ${x}.length > 0)` : f.primitive ? `${x} !== undefined && ${x} !== ${defaultExpr(f).replace('ZERO_UUID', `'00000000-0000-0000-0000-000000000000'`).replace('EMPTY_BYTES', 'undefined')}` : `${x} !== undefined && ${x} !== null`;
        const body = writeStmt(f, x, valid).replace(/\bflexible\b/g, 'true');
        lines.push(`    if (${c === 'true' ? '' : `(${c}) && `}${present}) tagged.push([${f.tag}, (w) => { ${body} }]);`);
      }
      lines.push(`    w.taggedFields(tagged);`);
      lines.push(`  }`);
    }
  }
  lines.push('}');
  void uses;
}

/** Versions of a that are not in b (b is always a suffix or the whole of a here). */
function subtract(a, b) {
  if (!a) return null;
  if (!b) return a;
  if (b.lo <= a.lo && b.hi >= a.hi) return null;
  if (b.lo > a.lo) return { lo: a.lo, hi: Math.min(a.hi, b.lo - 1) };
  return { lo: b.hi + 1, hi: a.hi };
}

function generate(file) {
  const msg = load(file);
  const valid = range(msg.validVersions);
  const flexibleRange = intersect(range(msg.flexibleVersions), valid);
  const structs = collectStructs(msg);
  const base = path.basename(file);
  const lines = [];
  lines.push(`// Generated by ${SCRIPT} from Apache Kafka's message schema ${base}. Do not edit: change the generator and run \`npm run codegen:kafka\`.`);
  lines.push(`/* eslint-disable */`);
  lines.push(`import { Reader, Writer, ZERO_UUID, EMPTY_BYTES, type Encodable } from '../codec/primitives.js';`);
  lines.push('');
  lines.push(`void ZERO_UUID;`);
  lines.push(`void EMPTY_BYTES;`);
  lines.push('');
  if (msg.apiKey !== undefined) lines.push(`export const API_KEY = ${msg.apiKey};`);
  lines.push(`export const MIN_VERSION = ${valid.lo};`);
  lines.push(`export const MAX_VERSION = ${valid.hi};`);
  // Kafka marks a version that is still being designed; brokers do not advertise it.
  lines.push(`export const MAX_STABLE_VERSION = ${msg.latestVersionUnstable ? valid.hi - 1 : valid.hi};`);
  lines.push(`/** The first flexible version (compact fields and tagged fields), or -1. */`);
  lines.push(`export const FIRST_FLEXIBLE_VERSION = ${flexibleRange ? flexibleRange.lo : -1};`);
  for (const s of [...structs.values()].reverse()) generateStruct(s, valid, flexibleRange, lines);
  lines.push('');
  return { name: msg.name, apiKey: msg.apiKey, type: msg.type, text: lines.join('\n') };
}

function generateIndex(messages) {
  const requests = messages.filter((m) => m.type === 'request').sort((a, b) => a.apiKey - b.apiKey);
  const lines = [];
  lines.push(`// Generated by ${SCRIPT} from Apache Kafka's message schemas. Do not edit: change the generator and run \`npm run codegen:kafka\`.`);
  lines.push(`/* eslint-disable */`);
  lines.push(`import type { Reader, Writer } from '../codec/primitives.js';`);
  for (const m of requests) {
    const res = m.name.replace(/Request$/, 'Response');
    lines.push(`import * as ${m.name} from './${m.name}.js';`);
    lines.push(`import * as ${res} from './${res}.js';`);
  }
  lines.push('');
  lines.push(`export interface ApiSchema {`);
  lines.push(`  apiKey: number;`);
  lines.push(`  name: string;`);
  lines.push(`  minVersion: number;`);
  lines.push(`  maxVersion: number;`);
  lines.push(`  maxStableVersion: number;`);
  lines.push(`  firstFlexibleVersion: number;`);
  lines.push(`  readRequest(r: Reader, v: number): any;`);
  lines.push(`  writeRequest(w: Writer, v: number, o: any): void;`);
  lines.push(`  readResponse(r: Reader, v: number): any;`);
  lines.push(`  writeResponse(w: Writer, v: number, o: any): void;`);
  lines.push(`}`);
  lines.push('');
  lines.push(`/** Every API of Kafka's schemas, by API key. */`);
  lines.push(`export const API_SCHEMAS: ReadonlyMap<number, ApiSchema> = new Map<number, ApiSchema>([`);
  for (const m of requests) {
    const n = m.name;
    const res = n.replace(/Request$/, 'Response');
    lines.push(
      `  [${m.apiKey}, { apiKey: ${m.apiKey}, name: '${n.replace(/Request$/, '')}', minVersion: ${n}.MIN_VERSION, maxVersion: ${n}.MAX_VERSION, maxStableVersion: ${n}.MAX_STABLE_VERSION, firstFlexibleVersion: ${n}.FIRST_FLEXIBLE_VERSION, readRequest: ${n}.read${n}, writeRequest: ${n}.write${n}, readResponse: ${res}.read${res}, writeResponse: ${res}.write${res} }],`,
    );
  }
  lines.push(`]);`);
  lines.push('');
  return lines.join('\n');
}

/** A schema without its "about" texts (documentation only). */
function withoutAbout(value) {
  if (Array.isArray(value)) return value.map(withoutAbout);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(Object.entries(value).filter(([k]) => k !== 'about').map(([k, v]) => [k, withoutAbout(v)]));
}

/**
 * The request, response and header schemas themselves, one per line: the tests
 * build random messages from them (round trips, the listener's fuzzer), so they
 * run in a checkout that has no copy of Kafka's schema files.
 */
function generateSchemas(entries) {
  const lines = [
    `// Generated by ${SCRIPT} from Apache Kafka's message schemas (their "about" texts left out). Do not edit: change the generator and run \`npm run codegen:kafka\`.`,
    '/* eslint-disable */',
    '',
    '/** Kafka\'s request, response and header schemas, by the name of their file. */',
    'export const MESSAGE_SCHEMAS: Record<string, unknown> = {',
  ];
  for (const [file, msg] of entries) lines.push(`  ${JSON.stringify(file)}: ${JSON.stringify(withoutAbout(msg))},`);
  lines.push('};', '');
  return lines.join('\n');
}

export function generateAll() {
  const files = fs
    .readdirSync(specDir)
    .filter((f) => f.endsWith('.json'))
    .sort();
  const out = new Map();
  const messages = [];
  const schemas = [];
  for (const f of files) {
    const msg = load(path.join(specDir, f));
    // Only messages that travel between client and broker: requests, responses, headers
    // and the consumer protocol's embedded structures. The first three are kept as schemas too.
    if (!['request', 'response', 'header', 'data'].includes(msg.type)) continue;
    if (msg.type !== 'data') schemas.push([f, msg]);
    const g = generate(path.join(specDir, f));
    out.set(`${g.name}.ts`, g.text);
    messages.push(g);
  }
  out.set('index.ts', generateIndex(messages));
  out.set('message-schemas.ts', generateSchemas(schemas));
  return out;
}

function main() {
  const check = process.argv.includes('--check');
  const files = generateAll();
  if (check) {
    const stale = [];
    for (const [name, text] of files) {
      const p = path.join(outDir, name);
      if (!fs.existsSync(p) || fs.readFileSync(p, 'utf8') !== text) stale.push(name);
    }
    const extra = fs.existsSync(outDir) ? fs.readdirSync(outDir).filter((n) => !files.has(n)) : [];
    if (stale.length || extra.length) {
      console.error(`generated Kafka codecs are stale: ${[...stale, ...extra].join(', ')}; run npm run codegen:kafka`);
      process.exit(1);
    }
    console.log(`${files.size} generated files are up to date`);
    return;
  }
  fs.mkdirSync(outDir, { recursive: true });
  for (const n of fs.readdirSync(outDir)) if (!files.has(n)) fs.rmSync(path.join(outDir, n));
  for (const [name, text] of files) fs.writeFileSync(path.join(outDir, name), text);
  console.log(`wrote ${files.size} files to ${path.relative(root, outDir)}`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
