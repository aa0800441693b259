import { sql } from 'kysely';
import { switchLive, writeScoreSet } from '../../pipelines/scoring.ts';
import type { ConsentStatus } from '../../src/consent/consent.table.ts';
import { phoneLineType, sha256Hex } from '../../src/contacts/identity.ts';
import type { DatabaseHandle } from '../../src/db/engine.ts';
import { createRun, ensureModel, finishRun, insertVersion, promoteVersion } from '../../src/registry/registry.repository.ts';

/*
 * A scored base for target lists, written through the real registry and scoring code:
 * contacts TG-00001… with example.com emails and +33 6 phones, a valid profiling consent
 * each, an email consent each, an SMS consent for the odd ones, and one live score set for
 * product TG-LAMP in which contact i has score 0.95 - i / (2 × count): rank i + 1.
 * TG-SOFA exists in the catalogue with no model.
 */

export const SCORED_SKU = 'TG-LAMP';
export const UNSCORED_SKU = 'TG-SOFA';
export const EXPLANATION_GROUPS = ['recency', 'frequency', 'category:lighting'];

export interface ScoredPerson {
  id: number;
  ref: string;
  email: string;
  phone: string;
  score: number;
  rank: number;
}

export interface ScoredBase {
  people: ScoredPerson[];
  modelId: number;
  versionId: number;
  scoreSetId: number;
}

const consent = (contactId: number, purpose: string, channel: string | null, capturedAt: Date, status: ConsentStatus = 'granted') => ({
  contact_id: contactId,
  purpose,
  channel,
  status,
  captured_at: capturedAt,
  source: 'web:account-form',
  method: purpose === 'profiling' ? 'explicit_checkbox' : 'double_opt_in',
  notice_version: 'privacy-v3',
  evidence_ref: null,
  expires_at: null,
  import_id: null,
});

export async function seedScoredBase(database: DatabaseHandle, count: number, now: Date): Promise<ScoredBase> {
  const { db } = database;
  const capturedAt = new Date(now.getTime() - 60 * 86_400_000);
  const [lamp] = await db
    .insertInto('products')
    .values([
      { sku: SCORED_SKU, name: 'Desk lamp', category: 'lighting' },
      { sku: UNSCORED_SKU, name: 'Sofa', category: 'furniture' },
    ])
    .returning('id')
    .execute();
  const refs = Array.from({ length: count }, (_, i) => `TG-${String(i + 1).padStart(5, '0')}`);
  const contacts = await db
    .insertInto('contacts')
    .values(refs.map((ref) => ({ external_id: ref, created_at: capturedAt })))
    .returning(['id', 'external_id'])
    .execute();
  const people: ScoredPerson[] = contacts.map((row, i) => ({
    id: Number(row.id),
    ref: row.external_id as string,
    email: `${(row.external_id as string).toLowerCase()}@example.com`,
    phone: `+3361234${String(i + 1).padStart(4, '0')}`,
    score: 0.95 - i / (2 * count),
    rank: i + 1,
  }));
  await db
    .insertInto('contact_personal_data')
    .values(
      people.map((p) => ({
        contact_id: p.id,
        email: p.email,
        email_hash: sha256Hex(p.email),
        phone: p.phone,
        phone_hash: sha256Hex(p.phone),
        phone_line_type: phoneLineType(p.phone),
        country: 'FR',
      })),
    )
    .execute();
  await db
    .insertInto('consent_events')
    .values(
      people.flatMap((p, i) => [
        consent(p.id, 'profiling', null, capturedAt),
        consent(p.id, 'direct_marketing', 'email', capturedAt),
        ...(i % 2 === 0 ? [consent(p.id, 'direct_marketing', 'sms', capturedAt)] : []),
      ]),
    )
    .execute();

  const runId = await createRun(db, { kind: 'pipeline', trigger: 'test', asOf: now, horizonDays: 30, params: {}, startedAt: now });
  const modelId = await ensureModel(db, { kind: 'product', key: SCORED_SKU, productId: Number(lamp!.id) });
  const network = await db
    .insertInto('model_networks')
    .values({
      run_id: runId,
      role: 'production',
      algorithm: 'logistic',
      feature_list: JSON.stringify(['recency_days']),
      metadata: JSON.stringify({ explanationGroups: EXPLANATION_GROUPS }),
      format: 'layers-model',
      model_topology: JSON.stringify({}),
      weight_specs: JSON.stringify([]),
      weight_data: Buffer.alloc(0),
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  const version = await insertVersion(db, {
    modelId,
    algorithm: 'logistic',
    status: 'candidate',
    runId,
    trainedAt: now,
    consentSnapshotAt: now,
    populationSize: count,
    trainingCutoff: now,
    horizonDays: 30,
    featureList: ['recency_days'],
    codeVersion: 'test',
    trainingDataHash: 'test',
    metrics: {},
    baselineMetrics: {},
    decisionReason: 'test',
    networkId: Number(network.id),
    evaluationNetworkId: null,
    outputIndex: 0,
  });
  await promoteVersion(db, modelId, version.id, now);
  const set = await db
    .insertInto('score_sets')
    .values({ model_id: modelId, model_version_id: version.id, run_id: runId, status: 'building', scored_at: now })
    .returning('id')
    .executeTakeFirstOrThrow();
  const scoreSetId = Number(set.id);
  const reasonCodes = new Uint8Array(count * 3);
  const contributions = new Float32Array(count * 3);
  for (let i = 0; i < count; i++) {
    reasonCodes.set([i % 3, (i + 1) % 3, 255], i * 3);
    contributions.set([0.5, 0.2, 0], i * 3);
  }
  const rows = await writeScoreSet(database, scoreSetId, {
    contactIds: Float64Array.from(people.map((p) => p.id)),
    scores: Float32Array.from(people.map((p) => p.score)),
    reasonCodes,
    contributions,
  });
  await db.updateTable('score_sets').set({ row_count: rows }).where('id', '=', scoreSetId).execute();
  await switchLive(db, modelId, scoreSetId, now);
  await finishRun(db, runId, { status: 'succeeded', finishedAt: now, summary: {} });
  await sql`ANALYZE`.execute(db);
  return { people, modelId, versionId: version.id, scoreSetId };
}
