import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Http2Bindings, type HttpBindings, serve } from '@hono/node-server';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Clock } from '../../src/clock.ts';
import { DEFAULT_CONSENT_POLICY, DEFAULT_TARGETING_POLICY } from '../../src/config.ts';
import { buildTargetList } from '../../src/targeting/target-list.service.ts';
import { SCORED_SKU, seedScoredBase } from '../targeting/targeting.fixtures.ts';
import { type ApiHarness, bodyOf, createApiHarness } from './api.fixtures.ts';

const NOW = new Date('2026-11-20T09:00:00Z');
const MINUTE = 60_000;
// one list per person per window: whether a list counts shows in where the next one starts
const TARGETING = { ...DEFAULT_TARGETING_POLICY, pressureMaxLists: 1, maxMembers: 1000, deliveryTimeoutSeconds: 900 };

/**
 * A list counts towards contact pressure from the moment it is recorded (so two lists at once
 * cannot both take the last room under the cap), and stops counting if its response is not
 * fully sent: the client went away, or the process serving it died (released after
 * CIBLE_TARGETS_DELIVERY_TIMEOUT_SECONDS).
 */
describe('contact pressure counts delivered lists only', () => {
  let api: ApiHarness;
  let at = NOW;
  const clock: Clock = { now: () => new Date(at) };
  const ranks = (list: { members: Array<{ rank: number }> }) => list.members.map((m) => m.rank);
  const first = (n: number, from = 1) => Array.from({ length: n }, (_, i) => from + i);
  const delivery = async (exportId: string) =>
    api.database.db
      .selectFrom('target_exports')
      .select(['delivery', 'delivery_settled_at'])
      .where('id', '=', exportId)
      .executeTakeFirstOrThrow();
  // members sent the list (holdouts are not) whose contact pressure no longer counts it
  const releasedMembers = async (exportId: string) =>
    (
      await sql<{ n: number }>`
        SELECT count(*)::int AS n
        FROM target_export_manifests m
        CROSS JOIN LATERAL unnest(m.contact_ids, m.holdout) AS u (contact_id, is_holdout)
        WHERE m.export_id = ${exportId}::uuid AND NOT u.is_holdout
          AND NOT EXISTS (SELECT 1 FROM contact_pressure p CROSS JOIN LATERAL unnest(p.sends) AS s
                          WHERE p.contact_id = u.contact_id AND s.export_id = m.export_id)`.execute(api.database.db)
    ).rows[0]!.n;

  /** Starts a list, reads the first chunk of its body, then goes away. */
  async function abandon(query: string): Promise<string> {
    const response = await api.call('marketer', `/v1/products/${SCORED_SKU}/targets?${query}`);
    expect(response.status).toBe(200);
    const reader = response.body!.getReader();
    const chunk = await reader.read();
    expect(chunk.done).toBe(false);
    await reader.cancel();
    return response.headers.get('x-export-id')!;
  }

  beforeAll(async () => {
    api = await createApiHarness({ clock, config: { targeting: TARGETING } });
    await seedScoredBase(api.database, 100, NOW);
  });
  afterAll(() => api?.close());

  it('releases a JSON list the client stopped reading: its members are free for the next list, the manifest keeps what was attempted', async () => {
    const abandoned = await abandon('channel=email&top=10');
    expect(await delivery(abandoned)).toEqual({ delivery: 'undelivered', delivery_settled_at: NOW });
    expect(await releasedMembers(abandoned)).toBe(10);
    const manifest = await bodyOf(await api.call('marketer', `/v1/exports/${abandoned}`));
    expect(manifest).toMatchObject({ delivery: 'undelivered', memberCount: 10 });
    expect(manifest.members.map((m: { rank: number }) => m.rank)).toEqual(first(10));
    expect((await bodyOf(await api.call('dpo', `/v1/exports/${abandoned}/verification`))).valid).toBe(true);

    // read in full: delivered, and it counts
    const response = await api.call('marketer', `/v1/products/${SCORED_SKU}/targets?channel=email&top=10`);
    const delivered = await bodyOf(response);
    expect(ranks(delivered)).toEqual(first(10));
    expect(await delivery(delivered.exportId)).toMatchObject({ delivery: 'delivered' });
    const next = await bodyOf(await api.call('marketer', `/v1/products/${SCORED_SKU}/targets?channel=email&top=10`));
    expect(ranks(next)).toEqual(first(10, 11));
  });

  it('releases a CSV list the client stopped reading', async () => {
    const abandoned = await abandon('channel=email&top=10&format=csv');
    expect(await delivery(abandoned)).toMatchObject({ delivery: 'undelivered' });
    const csv = await api.call('marketer', `/v1/products/${SCORED_SKU}/targets?channel=email&top=10&format=csv`);
    const rows = (await csv.text()).trim().split('\n').slice(1);
    expect(rows.map((row) => Number(row.split(',')[6]))).toEqual(first(10, 21));
    expect(await delivery(csv.headers.get('x-export-id')!)).toMatchObject({ delivery: 'delivered' });
  });

  it('holds a list whose delivery never finished until the delivery timeout, then releases it', async () => {
    // recorded, then its process died before the response ended: nothing settles it
    const stranded = await buildTargetList(
      api.database.db,
      { sku: SCORED_SKU, channel: 'email', size: { top: 10 }, holdoutPercent: 0, actor: 'test', apiKeyId: null },
      { consent: DEFAULT_CONSENT_POLICY, targeting: TARGETING },
      at,
    );
    expect(ranks(stranded)).toEqual(first(10, 31));
    expect(await delivery(stranded.exportId)).toEqual({ delivery: 'pending', delivery_settled_at: null });

    at = new Date(NOW.getTime() + 14 * MINUTE);
    const meanwhile = await bodyOf(await api.call('marketer', `/v1/products/${SCORED_SKU}/targets/preview?channel=email&top=10`));
    expect(meanwhile.scoreThreshold).toBeCloseTo(0.95 - 49 / 200, 5); // ranks 41..50: the pending list still counts

    at = new Date(NOW.getTime() + 16 * MINUTE);
    const later = await bodyOf(await api.call('marketer', `/v1/products/${SCORED_SKU}/targets?channel=email&top=10`));
    expect(ranks(later)).toEqual(first(10, 31));
    expect(await delivery(stranded.exportId)).toEqual({ delivery: 'undelivered', delivery_settled_at: at });
    expect(await releasedMembers(stranded.exportId)).toBe(10);
  });

  it('keeps the cap exact for lists asked at once: no one is in two of them', async () => {
    at = new Date(NOW.getTime() + 20 * MINUTE);
    const lists = await Promise.all(
      Array.from({ length: 4 }, () => api.call('marketer', `/v1/products/${SCORED_SKU}/targets?channel=email&top=5`).then(bodyOf)),
    );
    const taken = lists.flatMap((list) => ranks(list));
    expect(taken).toHaveLength(20);
    expect(new Set(taken).size).toBe(20);
    expect(taken.sort((a, b) => a - b)).toEqual(first(20, 41));
  });

  it('releases a list whose HTTP client went away before the response was sent, over a real server', async () => {
    at = new Date(NOW.getTime() + 30 * MINUTE);
    // the server makes the list, then waits until the client's connection has closed before answering
    let listMade!: () => void;
    const made = new Promise<void>((resolve) => {
      listMade = resolve;
    });
    const server = serve({
      hostname: '127.0.0.1',
      port: 0,
      fetch: async (request: Request, env: HttpBindings | Http2Bindings) => {
        const closed = new Promise((resolve) => env.incoming.socket.once('close', resolve));
        const response = await api.app.fetch(request, env);
        listMade();
        await closed;
        return response;
      },
    });
    try {
      await new Promise((resolve) => server.once('listening', resolve));
      const { port } = server.address() as AddressInfo;
      const request = http.get({
        host: '127.0.0.1',
        port,
        path: `/v1/products/${SCORED_SKU}/targets?channel=email&top=10`,
        headers: { authorization: `Bearer ${api.keys.marketer}` },
      });
      request.on('error', () => {});
      await made;
      request.destroy();
      const exportId = await waitForPendingToSettle();
      expect(await delivery(exportId)).toMatchObject({ delivery: 'undelivered' });
      const next = await bodyOf(await api.call('marketer', `/v1/products/${SCORED_SKU}/targets?channel=email&top=10`));
      expect(ranks(next)).toEqual(first(10, 61));
    } finally {
      server.close();
    }
  });

  /** The one list of this test settles once the server has seen its client go: waits for that. */
  async function waitForPendingToSettle(): Promise<string> {
    const latest = () =>
      api.database.db
        .selectFrom('target_exports')
        .select(['id', 'delivery'])
        .orderBy('created_at', 'desc')
        .limit(1)
        .executeTakeFirstOrThrow();
    let row = await latest();
    while (row.delivery === 'pending') {
      await new Promise((resolve) => setImmediate(resolve));
      row = await latest();
    }
    return row.id;
  }
});
