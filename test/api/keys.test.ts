import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findActiveKey } from '../../src/auth/api-key.repository.ts';
import { type ApiHarness, bodyOf, createApiHarness, jsonBody } from './api.fixtures.ts';

/*
 * API keys through the API, for admins: created with the secret shown once, listed without
 * secrets, revoked (refused at once), every change in the audit log without the key's name.
 */

let api: ApiHarness;
beforeAll(async () => {
  api = await createApiHarness();
});
afterAll(() => api?.close());

async function adminId(): Promise<number> {
  return (await findActiveKey(api.database.db, api.keys.admin))?.id as number;
}

describe('POST /v1/keys', () => {
  it('creates a key and shows it once, not to be cached; the key works at once with its role', async () => {
    const response = await api.call('admin', '/v1/keys', jsonBody('POST', { name: 'nightly scheduler', role: 'scheduler' }));
    expect(response.status).toBe(201);
    expect(response.headers.get('cache-control')).toBe('no-store');
    const created = await bodyOf(response);
    expect(created).toEqual({
      id: expect.any(Number),
      name: 'nightly scheduler',
      role: 'scheduler',
      prefix: expect.stringMatching(/^[0-9a-f]{12}$/),
      key: expect.stringMatching(/^cible_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/),
      warning: 'store this key now: it cannot be shown again',
    });
    expect(created.key.startsWith(`cible_${created.prefix}_`)).toBe(true);
    const use = await api.app.request('/v1/models', { headers: { authorization: `Bearer ${created.key}` } });
    expect(use.status).toBe(200);
    const forbidden = await api.app.request('/v1/keys', { headers: { authorization: `Bearer ${created.key}` } });
    expect(forbidden.status).toBe(403);

    const audit = await api.database.db.selectFrom('audit_log').selectAll().where('action', '=', 'api_key.create').execute();
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({
      actor: `api-key:${await adminId()}`,
      subject_type: 'api_key',
      subject_id: String(created.id),
      details: { role: 'scheduler', prefix: created.prefix },
    });
    expect(audit[0]?.request_id).toBeTruthy();
    expect(JSON.stringify(audit)).not.toContain('nightly');
    expect(JSON.stringify(audit)).not.toContain(created.key);
  });

  it('refuses an unknown role, a missing or empty name, unknown fields and a body that is not JSON', async () => {
    const badRole = await api.call('admin', '/v1/keys', jsonBody('POST', { name: 'x', role: 'root' }));
    expect(badRole.status).toBe(400);
    expect((await bodyOf(badRole)).errors).toEqual([{ where: 'body.role', problem: expect.stringContaining('marketer') }]);
    const noName = await api.call('admin', '/v1/keys', jsonBody('POST', { role: 'dpo' }));
    expect(noName.status).toBe(400);
    expect((await bodyOf(noName)).errors[0].where).toBe('body.name');
    expect((await api.call('admin', '/v1/keys', jsonBody('POST', { name: '   ', role: 'dpo' }))).status).toBe(400);
    const extra = await api.call('admin', '/v1/keys', jsonBody('POST', { name: 'x', role: 'dpo', key: 'cible_mine' }));
    expect(extra.status).toBe(400);
    const empty = await api.call('admin', '/v1/keys', { method: 'POST' });
    expect(empty.status).toBe(400);
    const text = await api.call('admin', '/v1/keys', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'name=x' });
    expect(text.status).toBe(415);
  });

  it('is for admins only', async () => {
    for (const role of ['marketer', 'data_scientist', 'scheduler', 'dpo'] as const) {
      expect((await api.call(role, '/v1/keys', jsonBody('POST', { name: 'mine', role: 'admin' }))).status, role).toBe(403);
    }
  });
});

describe('GET /v1/keys', () => {
  it('lists every key with its role and use, never a secret or a hash', async () => {
    const response = await api.call('admin', '/v1/keys');
    expect(response.status).toBe(200);
    const text = await response.text();
    for (const key of Object.values(api.keys)) expect(text).not.toContain(key.slice(20));
    expect(text).not.toMatch(/hash|"key"/i);
    const { keys } = JSON.parse(text);
    expect(keys.map((key: { role: string }) => key.role)).toEqual(['marketer', 'data_scientist', 'scheduler', 'dpo', 'admin', 'scheduler']);
    const admin = keys.find((key: { id: number }) => key.id === keys[4].id);
    expect(admin).toEqual({
      id: expect.any(Number),
      name: 'test admin',
      role: 'admin',
      prefix: expect.stringMatching(/^[0-9a-f]{12}$/),
      createdAt: expect.any(String),
      lastUsedAt: expect.any(String),
      revokedAt: null,
    });
    expect(api.keys.admin.startsWith(`cible_${admin.prefix}_`)).toBe(true);
    expect((await api.call('dpo', '/v1/keys')).status).toBe(403);
  });
});

describe('DELETE /v1/keys/{id}', () => {
  it('revokes a key, which is refused from then on; a second revocation is a 404', async () => {
    const created = await bodyOf(await api.call('admin', '/v1/keys', jsonBody('POST', { name: 'to revoke', role: 'marketer' })));
    const auth = { headers: { authorization: `Bearer ${created.key}` } };
    expect((await api.app.request('/v1/models', auth)).status).toBe(200);

    const revoked = await api.call('admin', `/v1/keys/${created.id}`, { method: 'DELETE' });
    expect(revoked.status).toBe(204);
    expect(await revoked.text()).toBe('');
    const refused = await api.app.request('/v1/models', auth);
    expect(refused.status).toBe(401);
    expect((await bodyOf(refused)).detail).toMatch(/unknown or revoked/);

    const again = await api.call('admin', `/v1/keys/${created.id}`, { method: 'DELETE' });
    expect(again.status).toBe(404);
    expect((await bodyOf(again)).detail).toBe(`no active API key ${created.id} (unknown or already revoked)`);

    const { keys } = await bodyOf(await api.call('admin', '/v1/keys'));
    expect(keys.find((key: { id: number }) => key.id === created.id).revokedAt).toEqual(expect.any(String));
    const audit = await api.database.db.selectFrom('audit_log').selectAll().where('action', '=', 'api_key.revoke').execute();
    expect(audit.map((entry) => [entry.actor, entry.subject_id])).toEqual([[`api-key:${await adminId()}`, String(created.id)]]);
  });

  it('answers 404 for an unknown id and 400 for one that is not a whole number', async () => {
    expect((await api.call('admin', '/v1/keys/999999', { method: 'DELETE' })).status).toBe(404);
    for (const id of ['abc', '0', '1.5', '-3']) {
      const response = await api.call('admin', `/v1/keys/${id}`, { method: 'DELETE' });
      expect(response.status, id).toBe(400);
      expect((await bodyOf(response)).errors[0].where).toBe('path.id');
    }
    expect((await api.call('scheduler', '/v1/keys/1', { method: 'DELETE' })).status).toBe(403);
  });
});
