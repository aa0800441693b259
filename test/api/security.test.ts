import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PipelineBusyError, type PipelineLauncher } from '../../src/api/api-env.ts';
import { createApiKey, ROLES, revokeApiKey } from '../../src/auth/api-key.repository.ts';
import { type ApiHarness, bodyOf, createApiHarness, jsonBody } from './api.fixtures.ts';

/*
 * The role matrix, read from the OpenAPI document so that every route is covered, those
 * added later included: for each operation and each role, a key of a role the operation does
 * not list in `x-roles` gets 403, one of a listed role gets past authorisation; no key or a
 * revoked key gets 401. Then the rate limit (429) and the body limit (413).
 */

interface Parameter {
  name: string;
  in: string;
  schema?: { type?: string; format?: string; pattern?: string; enum?: string[] };
}

interface Operation {
  method: string;
  path: string;
  roles: string[] | undefined;
  parameters: Parameter[];
}

const METHODS = ['get', 'post', 'put', 'patch', 'delete'];

/** A plausible value for a path parameter that names nothing that exists (a DELETE must not hit a real row). */
function plausible(parameter: Parameter): string {
  const schema = parameter.schema ?? {};
  if (schema.enum?.[0]) return schema.enum[0];
  if (schema.format === 'uuid') return '00000000-0000-4000-8000-000000000000';
  const candidates = ['999999', 'x', 'nothing-here'];
  if (schema.pattern) {
    const pattern = new RegExp(schema.pattern);
    return candidates.find((value) => pattern.test(value)) ?? '999999';
  }
  return schema.type === 'integer' || schema.type === 'number' ? '999999' : 'x';
}

function concretePath(operation: Operation): string {
  return operation.path.replace(/\{([^}]+)\}/g, (_, name: string) => {
    const parameter = operation.parameters.find((p) => p.in === 'path' && p.name === name) ?? { name, in: 'path' };
    return encodeURIComponent(plausible(parameter));
  });
}

function requestFor(operation: Operation): RequestInit {
  const method = operation.method.toUpperCase();
  return ['POST', 'PUT', 'PATCH'].includes(method) ? jsonBody(method, {}) : { method };
}

// no background work from the role matrix: a run request by an allowed role is answered 409
const busyPipeline: PipelineLauncher = {
  async start() {
    throw new PipelineBusyError('a run is already running (security test)');
  },
};

let api: ApiHarness;
let operations: Operation[];

beforeAll(async () => {
  api = await createApiHarness({ pipeline: busyPipeline });
  const document = await bodyOf(await api.call(null, '/openapi.json'));
  operations = Object.entries<Record<string, { 'x-roles'?: string[]; parameters?: Parameter[] }>>(document.paths).flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([method]) => METHODS.includes(method))
      .map(([method, operation]) => ({ method, path, roles: operation['x-roles'], parameters: operation.parameters ?? [] })),
  );
});
afterAll(() => api?.close());

describe('the role matrix, from the OpenAPI document', () => {
  it('covers the API: every /v1 operation declares the roles it accepts, from the known roles', () => {
    const v1 = operations.filter((operation) => operation.path.startsWith('/v1/'));
    expect(v1.length).toBeGreaterThanOrEqual(7);
    for (const operation of v1) {
      const label = `${operation.method.toUpperCase()} ${operation.path}`;
      expect(operation.roles, `${label}: x-roles`).toEqual(expect.any(Array));
      expect(operation.roles?.length, `${label}: x-roles`).toBeGreaterThan(0);
      for (const role of operation.roles ?? []) expect(ROLES, `${label}: role ${role}`).toContain(role);
    }
    // the routes of this group are all there
    const names = new Set(operations.map((operation) => `${operation.method} ${operation.path}`));
    for (const name of [
      'get /v1/models',
      'get /v1/models/{sku}',
      'post /v1/pipeline/runs',
      'get /v1/pipeline/runs/{id}',
      'post /v1/keys',
      'get /v1/keys',
      'delete /v1/keys/{id}',
    ]) {
      expect(names, name).toContain(name);
    }
  });

  it('refuses each role an operation does not list (403) and lets each listed one through', async () => {
    const failures: string[] = [];
    for (const operation of operations.filter((candidate) => candidate.roles)) {
      const path = concretePath(operation);
      for (const role of ROLES) {
        const response = await api.call(role, path, requestFor(operation));
        const allowed = operation.roles?.includes(role) ?? false;
        const label = `${operation.method.toUpperCase()} ${path} as ${role} (x-roles ${operation.roles?.join(', ')}): ${response.status}`;
        if (allowed ? [401, 403].includes(response.status) : response.status !== 403) failures.push(label);
        if (!allowed) expect(response.headers.get('content-type'), label).toContain('application/problem+json');
        await response.body?.cancel();
      }
    }
    expect(failures).toEqual([]);
  });

  it('answers 401 to every /v1 operation without a key, with a malformed key, or with a revoked key', async () => {
    const revoked = await createApiKey(api.database.db, 'revoked in the test', 'admin');
    await revokeApiKey(api.database.db, revoked.id, new Date());
    const failures: string[] = [];
    for (const operation of operations.filter((candidate) => candidate.path.startsWith('/v1/'))) {
      const path = concretePath(operation);
      const attempts: Array<[string, Record<string, string>]> = [
        ['no key', {}],
        ['a malformed key', { authorization: 'Bearer not-a-key' }],
        ['a revoked key', { authorization: `Bearer ${revoked.key}` }],
        ['a revoked key in X-API-Key', { 'x-api-key': revoked.key }],
      ];
      for (const [what, headers] of attempts) {
        const init = requestFor(operation);
        const response = await api.app.request(path, { ...init, headers: { ...(init.headers as Record<string, string>), ...headers } });
        if (response.status !== 401) failures.push(`${operation.method.toUpperCase()} ${path} with ${what}: ${response.status}`);
        else expect(response.headers.get('content-type')).toContain('application/problem+json');
        await response.body?.cancel();
      }
    }
    expect(failures).toEqual([]);
  });
});

describe('limits', () => {
  it('answers 429 problem+json once a key has made its requests of the minute; other keys are not affected', async () => {
    const limited = await createApiHarness({ config: { api: { rateLimitPerMinute: 5, bodyLimitBytes: 1_048_576 } } });
    try {
      for (let request = 1; request <= 5; request++)
        expect((await limited.call('dpo', '/v1/models')).status, `request ${request}`).toBe(200);
      const refused = await limited.call('dpo', '/v1/models');
      expect(refused.status).toBe(429);
      expect(refused.headers.get('content-type')).toContain('application/problem+json');
      const problem = await bodyOf(refused);
      expect(problem).toMatchObject({ status: 429, title: 'Too many requests', detail: 'at most 5 requests per minute per API key' });
      expect(problem.requestId).toBe(refused.headers.get('x-request-id'));
      expect((await limited.call('marketer', '/v1/models')).status).toBe(200);
    } finally {
      await limited.close();
    }
  });

  it('answers 413 problem+json to a body over the limit, before reading it as JSON', async () => {
    const big = JSON.stringify({ name: 'x'.repeat(api.config.api.bodyLimitBytes), role: 'dpo' });
    const response = await api.call('admin', '/v1/keys', { method: 'POST', headers: { 'content-type': 'application/json' }, body: big });
    expect(response.status).toBe(413);
    expect(response.headers.get('content-type')).toContain('application/problem+json');
    expect((await bodyOf(response)).detail).toBe(`the request body is larger than ${api.config.api.bodyLimitBytes} bytes`);
    const { keys } = await bodyOf(await api.call('admin', '/v1/keys'));
    expect(keys.some((key: { role: string; name: string }) => key.name.startsWith('xxx'))).toBe(false);
  });
});
