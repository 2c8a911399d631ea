/**
 * The OpenAPI 3.1 document served at /api/openapi.json, derived from the
 * contract's route table and input schemas, so it cannot drift from what the
 * server accepts.
 */
import { z } from 'zod';
import { operations } from '../../contract/operations.js';
import { routes } from '../../contract/routes.js';

type Json = Record<string, unknown>;

export function buildOpenApi(version: string): Json {
  const paths: Record<string, Json> = {};
  for (const route of routes) {
    const path = route.path.replace(/:(\w+)/g, '{$1}');
    const pathParams = [...route.path.matchAll(/:(\w+)/g)].map((m) => m[1]!);
    let schema: Json;
    try {
      schema = z.toJSONSchema(operations[route.op].input, { io: 'input', unrepresentable: 'any' }) as Json;
    } catch {
      schema = { type: 'object' };
    }
    const properties = { ...((schema.properties as Record<string, Json> | undefined) ?? {}) };
    const required = new Set((schema.required as string[] | undefined) ?? []);
    const parameters: Json[] = pathParams.map((name) => ({ name, in: 'path', required: true, schema: { type: 'string' } }));
    for (const name of pathParams) {
      delete properties[name];
      required.delete(name);
    }
    const operation: Json = {
      operationId: route.op,
      security: route.public ? [] : [{ bearer: [] }, { cookie: [] }],
      parameters,
      responses: {
        [String(route.status ?? 200)]: { description: 'success', content: { 'application/json': {} } },
        default: { description: 'error', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
      },
    };
    if (route.method === 'GET' || route.method === 'DELETE') {
      for (const [name, s] of Object.entries(properties)) parameters.push({ name, in: 'query', required: required.has(name), schema: s });
    } else if (Object.keys(properties).length > 0) {
      operation.requestBody = {
        required: required.size > 0,
        content: { 'application/json': { schema: { type: 'object', properties, required: [...required] } } },
      };
    }
    paths[path] = { ...(paths[path] ?? {}), [route.method.toLowerCase()]: operation };
  }
  return {
    openapi: '3.1.0',
    info: { title: 'Brokerdeck API', version },
    paths,
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer' },
        cookie: { type: 'apiKey', in: 'cookie', name: 'brokerdeck_token' },
      },
      schemas: {
        Error: {
          type: 'object',
          required: ['error'],
          properties: {
            error: {
              type: 'object',
              required: ['code', 'message'],
              properties: { code: { type: 'string' }, message: { type: 'string' }, field: { type: 'string' } },
            },
          },
        },
      },
    },
  };
}
