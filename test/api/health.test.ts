import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiHarness, bodyOf, createApiHarness } from './api.fixtures.ts';

describe('health, readiness, OpenAPI and errors', () => {
  let api: ApiHarness;
  beforeAll(async () => {
    api = await createApiHarness();
  });
  afterAll(() => api?.close());

  it('answers /health without a key and /ready once the schema is current', async () => {
    expect(await bodyOf(await api.call(null, '/health'))).toEqual({ status: 'ok' });
    const ready = await api.call(null, '/ready');
    expect(ready.status).toBe(200);
    expect((await bodyOf(ready)).status).toBe('ready');
  });

  it('serves the OpenAPI document and the interactive page with local assets', async () => {
    const document = await bodyOf(await api.call(null, '/openapi.json'));
    expect(document.openapi).toBe('3.1.0');
    expect(document.components.securitySchemes.apiKey.scheme).toBe('bearer');
    const page = await (await api.call(null, '/docs')).text();
    expect(page).toContain('/docs/assets/swagger-ui-dist/swagger-ui-bundle.js');
    const asset = await api.call(null, '/docs/assets/swagger-ui-dist/swagger-ui-bundle.js');
    expect(asset.status).toBe(200);
  });

  it('answers unknown routes and missing keys with problem+json and a request id', async () => {
    const missing = await api.call('admin', '/nowhere');
    expect(missing.status).toBe(404);
    expect(missing.headers.get('content-type')).toContain('application/problem+json');
    const problem = await bodyOf(missing);
    expect(problem.requestId).toBe(missing.headers.get('x-request-id'));

    const noKey = await api.call(null, '/v1/models');
    expect(noKey.status).toBe(401);
    expect((await bodyOf(noKey)).detail).toMatch(/API key is required/);
    const badKey = await api.app.request('/v1/models', { headers: { authorization: 'Bearer cible_000000000000_nope' } });
    expect(badKey.status).toBe(401);
  });
});

describe('an internal failure', () => {
  it('answers 500 problem+json with the request id and no internal text, and logs no message', async () => {
    const api = await createApiHarness();
    await api.close();
    const response = await api.call('data_scientist', '/v1/models');
    expect(response.status).toBe(500);
    expect(response.headers.get('content-type')).toContain('application/problem+json');
    const problem = await bodyOf(response);
    expect(problem.detail).toBe(`the request failed; quote request id ${problem.requestId} when reporting it`);
    expect(JSON.stringify(problem)).not.toMatch(/pool|pglite|postgres|closed|end/i);
    const logged = api.logLines.join('');
    expect(logged).toContain('request failed');
    expect(logged).toContain(problem.requestId);
  });
});
