import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PipelineBusyError, type PipelineLauncher } from '../../src/api/api-env.ts';
import type { Role } from '../../src/auth/api-key.table.ts';
import { type ApiHarness, bodyOf, createApiHarness, jsonBody } from './api.fixtures.ts';

/*
 * Bad requests that must be refused with a 400 problem naming what is wrong, on every route
 * the OpenAPI document lists (issue 16): a NUL character in any path or query parameter, and a
 * JSON body nested far beyond anything the API takes.
 */

interface Parameter {
  name: string;
  in: string;
  schema?: { type?: string; format?: string; enum?: string[] };
}

interface Operation {
  method: string;
  path: string;
  roles: Role[];
  parameters: Parameter[];
}

const busyPipeline: PipelineLauncher = {
  async start() {
    throw new PipelineBusyError('a run is already running (hardening test)');
  },
};

let api: ApiHarness;
let operations: Operation[];

beforeAll(async () => {
  api = await createApiHarness({ pipeline: busyPipeline, config: { api: { rateLimitPerMinute: 100_000, bodyLimitBytes: 4_194_304 } } });
  const document = await bodyOf(await api.app.request('/openapi.json'));
  operations = [];
  for (const [path, item] of Object.entries<Record<string, { 'x-roles'?: Role[]; parameters?: Parameter[] }>>(document.paths)) {
    for (const [method, operation] of Object.entries(item)) {
      if (!['get', 'post', 'put', 'patch', 'delete'].includes(method)) continue;
      operations.push({ method: method.toUpperCase(), path, roles: operation['x-roles'] ?? [], parameters: operation.parameters ?? [] });
    }
  }
});
afterAll(() => api?.close());

/** A harmless value for a parameter (the NUL goes into one parameter at a time). */
function plausible(parameter: Parameter): string {
  const schema = parameter.schema ?? {};
  if (schema.enum?.[0]) return schema.enum[0];
  if (schema.format === 'uuid') return '00000000-0000-4000-8000-000000000000';
  return schema.type === 'integer' || schema.type === 'number' ? '999999' : 'x';
}

function call(operation: Operation, path: string): Promise<Response> {
  const role = operation.roles[0] ?? 'admin';
  const init = ['POST', 'PUT', 'PATCH'].includes(operation.method) ? jsonBody(operation.method, {}) : { method: operation.method };
  const headers = new Headers(init.headers);
  headers.set('authorization', `Bearer ${api.keys[role]}`);
  return Promise.resolve(api.app.request(path, { ...init, headers }));
}

function pathWith(operation: Operation, poisoned?: string): string {
  return operation.path.replace(/\{([^}]+)\}/g, (_, name: string) => {
    if (name === poisoned) return 'a%00b';
    const parameter = operation.parameters.find((p) => p.in === 'path' && p.name === name) ?? { name, in: 'path' };
    return encodeURIComponent(plausible(parameter));
  });
}

async function expectNulRefused(operation: Operation, url: string, where: string): Promise<void> {
  const response = await call(operation, url);
  const label = `${operation.method} ${url}`;
  expect(response.status, label).toBe(400);
  expect(response.headers.get('content-type'), label).toMatch(/^application\/problem\+json/);
  const problem = await bodyOf(response);
  expect(problem.errors, label).toEqual([{ where, problem: 'holds a NUL character (%00), which no value may hold' }]);
}

describe('a NUL character in a path or query parameter', () => {
  it('is refused with 400 naming the parameter, on every route of the OpenAPI document', async () => {
    let probes = 0;
    for (const operation of operations) {
      for (const parameter of operation.parameters.filter((p) => p.in === 'path')) {
        await expectNulRefused(operation, pathWith(operation, parameter.name), `path.${parameter.name}`);
        probes += 1;
      }
      for (const parameter of operation.parameters.filter((p) => p.in === 'query')) {
        for (const poison of ['a%00b', '%00']) {
          await expectNulRefused(operation, `${pathWith(operation)}?${parameter.name}=${poison}`, `query.${parameter.name}`);
          probes += 1;
        }
      }
    }
    expect(operations.length).toBeGreaterThan(15);
    expect(probes).toBeGreaterThan(30);
  });

  it('also in a query parameter no route declares, and in a path that matches no route', async () => {
    const models = operations.find((operation) => operation.path === '/v1/models' && operation.method === 'GET')!;
    await expectNulRefused(models, '/v1/models?unknown=%00', 'query.unknown');
    const response = await api.app.request('/v1/nothing%00here', { headers: { authorization: `Bearer ${api.keys.admin}` } });
    expect(response.status).toBe(400);
    expect((await bodyOf(response)).errors).toEqual([{ where: 'path', problem: 'holds a NUL character (%00), which no value may hold' }]);
  });
});

describe('a deeply nested JSON body', () => {
  it('is refused with 400 before it is parsed, and the server answers the next request', async () => {
    const depth = 2_000_000;
    const body = `{"consents":${'['.repeat(depth)}${']'.repeat(depth)}}`;
    expect(body.length).toBeLessThan(4_194_304);
    const response = await api.app.request('/v1/consents', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${api.keys.dpo}` },
      body,
    });
    expect(response.status).toBe(400);
    expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect((await bodyOf(response)).detail).toBe('body: the JSON is nested deeper than 32 levels');
    expect((await api.call(null, '/health')).status).toBe(200);
  });

  it('a body within the depth limit still reaches the route (its own validation answers)', async () => {
    const response = await api.call('dpo', '/v1/consents', jsonBody('POST', { consents: [{ note: [[[['"[[[[']]]] }] }));
    expect(response.status).toBe(400);
    expect((await bodyOf(response)).detail).not.toContain('nested deeper');
  });
});
