import { type Kysely, sql } from 'kysely';
import type { Database } from '../db/database.ts';
import type { ModelTarget } from '../registry/model-catalog.repository.ts';
import { jsonNumber as num } from '../registry/model-metrics.ts';
import type { ModelVersionStatus } from '../registry/registry.table.ts';

/*
 * The reads behind the models overview: every model with its champion's figures (JSON paths
 * only, never a whole metrics document), and the catalogue's products that have no model.
 */

export interface OverviewModelRow {
  target: ModelTarget;
  productName: string | null;
  champion: {
    version: number;
    algorithm: string;
    trainedAt: Date;
    consentSnapshotAt: Date;
    populationSize: number;
    decisionReason: string | null;
    /** buyers in the latest training window (whole snapshot); older versions only have the evaluation window's */
    buyers: number | null;
    buyersWindow: 'training' | 'evaluation' | null;
    baseRate: number | null;
    auc: number | null;
    liftTopDecile: number | null;
    ece: number | null;
    rfmAuc: number | null;
    bgnbdAuc: number | null;
    /** the previous champion judged on this version's evaluation window, when there was one */
    previous: { version: number; auc: number | null } | null;
    /** the AUC stored with the pipeline version before this one (its own window) */
    priorVersionAuc: number | null;
  } | null;
  /** the most recent version trained by a pipeline run (backtests excluded) */
  latest: { version: number; status: ModelVersionStatus; decisionReason: string | null; runId: number | null } | null;
  versions: number;
}

/** Every model with its champion's figures and its latest version, in one query (JSON paths only). */
export async function overviewModels(db: Kysely<Database>): Promise<OverviewModelRow[]> {
  const { rows } = await sql<Record<string, unknown>>`
    SELECT m.target_kind, m.target_key, p.name AS product_name,
      c.version, c.algorithm, c.trained_at, c.consent_snapshot_at, c.population_size, c.decision_reason,
      c.metrics #> '{trainingWindow,buyers}' AS window_buyers,
      c.metrics #> '{evaluation,positives}' AS evaluation_buyers,
      c.metrics #> '{evaluation,baseRate}' AS base_rate,
      c.metrics #> '{evaluation,rocAuc}' AS auc,
      c.metrics #> '{evaluation,gains,0,lift}' AS lift,
      c.metrics #> '{evaluation,expectedCalibrationError}' AS ece,
      c.baseline_metrics #> '{rfm,rocAuc}' AS rfm_auc,
      c.baseline_metrics #> '{bgnbd,rocAuc}' AS bgnbd_auc,
      c.metrics #> '{champion,version}' AS previous_version,
      c.metrics #> '{champion,auc}' AS previous_auc,
      (SELECT v.metrics #> '{evaluation,rocAuc}' FROM model_versions v JOIN pipeline_runs r ON r.id = v.run_id AND r.kind = 'pipeline'
        WHERE v.model_id = m.id AND v.version < c.version ORDER BY v.version DESC LIMIT 1) AS prior_auc,
      l.version AS latest_version, l.status AS latest_status, l.decision_reason AS latest_reason, l.run_id AS latest_run,
      (SELECT count(*)::int FROM model_versions a WHERE a.model_id = m.id) AS versions
    FROM models m
    LEFT JOIN products p ON p.id = m.product_id
    LEFT JOIN model_versions c ON c.model_id = m.id AND c.status = 'champion'
    LEFT JOIN LATERAL (
      SELECT v.version, v.status, v.decision_reason, v.run_id FROM model_versions v
      JOIN pipeline_runs r ON r.id = v.run_id AND r.kind = 'pipeline'
      WHERE v.model_id = m.id ORDER BY v.version DESC LIMIT 1) l ON true
    ORDER BY m.target_kind, m.target_key`.execute(db);
  return rows.map((row) => {
    const windowBuyers = num(row.window_buyers);
    const evaluationBuyers = num(row.evaluation_buyers);
    const previousVersion = num(row.previous_version);
    return {
      target: { kind: row.target_kind as ModelTarget['kind'], key: row.target_key as string },
      productName: (row.product_name as string | null) ?? null,
      champion:
        row.version === null
          ? null
          : {
              version: Number(row.version),
              algorithm: row.algorithm as string,
              trainedAt: row.trained_at as Date,
              consentSnapshotAt: row.consent_snapshot_at as Date,
              populationSize: Number(row.population_size),
              decisionReason: (row.decision_reason as string | null) ?? null,
              buyers: windowBuyers ?? evaluationBuyers,
              buyersWindow: windowBuyers !== null ? 'training' : evaluationBuyers !== null ? 'evaluation' : null,
              baseRate: num(row.base_rate),
              auc: num(row.auc),
              liftTopDecile: num(row.lift),
              ece: num(row.ece),
              rfmAuc: num(row.rfm_auc),
              bgnbdAuc: num(row.bgnbd_auc),
              previous: previousVersion === null ? null : { version: previousVersion, auc: num(row.previous_auc) },
              priorVersionAuc: num(row.prior_auc),
            },
      latest:
        row.latest_version === null
          ? null
          : {
              version: Number(row.latest_version),
              status: row.latest_status as ModelVersionStatus,
              decisionReason: (row.latest_reason as string | null) ?? null,
              runId: num(row.latest_run),
            },
      versions: Number(row.versions),
    };
  });
}

/** The catalogue's products no model was ever registered for, by SKU (a run records only the targets it looked at). */
export async function productsWithoutModel(db: Kysely<Database>): Promise<Array<{ sku: string; name: string }>> {
  const { rows } = await sql<{ sku: string; name: string }>`
    SELECT p.sku, p.name FROM products p
    WHERE NOT EXISTS (SELECT 1 FROM models m WHERE m.target_kind = 'product' AND m.target_key = p.sku)
    ORDER BY p.sku`.execute(db);
  return rows;
}
