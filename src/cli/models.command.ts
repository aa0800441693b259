import type { Command } from 'commander';
import { sql } from 'kysely';
import { UserError, withContext } from './cli-context.ts';

interface VersionRow {
  target_kind: string;
  target_key: string;
  version: number;
  status: string;
  algorithm: string;
  run_id: number | null;
  trained_at: Date;
  training_cutoff: Date;
  horizon_days: number;
  consent_snapshot_at: Date;
  population_size: number;
  code_version: string;
  training_data_hash: string;
  feature_list: string[];
  metrics: Record<string, unknown>;
  baseline_metrics: Record<string, unknown>;
  decision_reason: string | null;
  promoted_at: Date | null;
}

const auc = (metrics: unknown) => {
  const value = (metrics as { rocAuc?: number } | null)?.rocAuc;
  return typeof value === 'number' && !Number.isNaN(value) ? value.toFixed(3) : '  n/a';
};

/** "SKU", "any", "category:garden" or "product:SKU" → the registry's kind and key. */
function parseTarget(value: string): { kind: string; key: string } {
  if (value === 'any') return { kind: 'any', key: 'any' };
  const match = /^(category|product):(.+)$/.exec(value);
  return match ? { kind: match[1] as string, key: match[2] as string } : { kind: 'product', key: value };
}

export function registerModelCommands(program: Command): void {
  const models = program.command('models').description('the model registry: champions, versions, metrics, lineage');
  models
    .command('list')
    .description('every model with its champion and how it compares with the baselines')
    .option('--json', 'print JSON')
    .action((flags: { json?: boolean }) =>
      withContext({ migrate: true }, async (context) => {
        const { rows } = await sql<VersionRow & { versions: number }>`
          SELECT m.target_kind, m.target_key, v.*, (SELECT count(*)::int FROM model_versions a WHERE a.model_id = m.id) AS versions
          FROM models m LEFT JOIN model_versions v ON v.model_id = m.id AND v.status = 'champion'
          ORDER BY m.target_kind, m.target_key`.execute(context.database.db);
        if (flags.json) {
          console.log(JSON.stringify(rows.map((row) => ({ ...row, feature_list: undefined })), null, 2));
          return;
        }
        console.log(`${'target'.padEnd(28)} champion  algo      AUC    RFM  BG/NBD  versions  trained`);
        for (const row of rows) {
          const champion = row.version ? `v${row.version}` : 'none';
          console.log(
            `${`${row.target_kind}:${row.target_key}`.padEnd(28)} ${champion.padEnd(9)} ${(row.algorithm ?? '-').padEnd(8)} ${auc(row.metrics?.evaluation)} ${auc(row.baseline_metrics?.rfm)} ${auc(row.baseline_metrics?.bgnbd)}  ${String(row.versions).padStart(8)}  ${row.trained_at ? row.trained_at.toISOString().slice(0, 16) : '-'}`,
          );
        }
      }),
    );

  models
    .command('show <target>')
    .description('every version of one model (a SKU, "any" or "category:NAME"): metrics, baselines, decision, lineage')
    .option('--json', 'print JSON')
    .action((target: string, flags: { json?: boolean }) =>
      withContext({ migrate: true }, async (context) => {
        const { kind, key } = parseTarget(target);
        const { rows } = await sql<VersionRow>`
          SELECT m.target_kind, m.target_key, v.* FROM models m JOIN model_versions v ON v.model_id = m.id
          WHERE m.target_kind = ${kind} AND m.target_key = ${key} ORDER BY v.version DESC`.execute(context.database.db);
        if (rows.length === 0) throw new UserError(`no model for ${kind} "${key}"; see cible models list`);
        if (flags.json) {
          console.log(JSON.stringify(rows, null, 2));
          return;
        }
        for (const row of rows) {
          const evaluation = row.metrics.evaluation as Record<string, number> | null;
          console.log(`${row.target_kind}:${row.target_key} v${row.version} ${row.status} (${row.algorithm}), run ${row.run_id}`);
          console.log(`  decision: ${row.decision_reason ?? '-'}`);
          console.log(`  lineage: consent snapshot ${row.consent_snapshot_at.toISOString()} (${row.population_size} people), cutoff ${row.training_cutoff.toISOString().slice(0, 10)}, horizon ${row.horizon_days} d, code ${row.code_version}, data sha256 ${row.training_data_hash.slice(0, 16)}…, ${row.feature_list.length} features`);
          if (evaluation) {
            const f = (name: string) => (typeof evaluation[name] === 'number' ? (evaluation[name] as number).toFixed(3) : 'n/a');
            console.log(`  evaluation: ROC AUC ${f('rocAuc')}, PR AUC ${f('prAuc')}, log loss ${f('logLoss')}, Brier ${f('brier')}, ECE ${f('expectedCalibrationError')}; baselines RFM ${auc(row.baseline_metrics.rfm)}, BG/NBD ${auc(row.baseline_metrics.bgnbd)}`);
            const gains = (evaluation as unknown as { gains?: Array<{ decile: number; lift: number; cumulativeGain: number }> }).gains ?? [];
            console.log(`  lift by decile: ${gains.map((g) => g.lift.toFixed(2)).join(' ')}`);
            console.log(`  cumulative gains: ${gains.map((g) => g.cumulativeGain.toFixed(2)).join(' ')}`);
          }
          const importance = (row.metrics.importance as Array<{ group: string; aucDrop: number | null }> | undefined) ?? [];
          if (importance.length > 0) {
            console.log(`  importance (AUC drop): ${importance.slice(0, 5).map((i) => `${i.group} ${(i.aucDrop ?? 0).toFixed(3)}`).join(', ')}`);
          }
        }
      }),
    );
}
