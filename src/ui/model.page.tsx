import type { FC } from 'hono/jsx';
import { PSI_THRESHOLD } from '../../models/drift.ts';
import type { ModelTarget } from '../registry/model-catalog.repository.ts';
import type { StoredEvaluation } from '../registry/model-metrics.ts';
import type { RunOutcome } from '../registry/pipeline-runs.repository.ts';
import * as f from './format.ts';
import { Badge, ChartOrMissing, type ChartSlot, Layout, type Viewer } from './layout.tsx';
import type { ModelRecord } from './model.repository.ts';
import { FiguresTable, HistoryTable, Trend } from './model-tables.tsx';
import { modelPath } from './paths.ts';
import type { FeatureDrift, FunnelView } from './review.service.ts';

export function targetTitle(target: ModelTarget, name: string | null): string {
  if (target.kind === 'any') return 'Any purchase';
  if (target.kind === 'category') return `Category ${target.key}`;
  return name ? `${target.key} — ${name}` : target.key;
}

const Charts: FC<{ charts: ChartSlot[] }> = ({ charts }) => (
  <div class="charts">
    {charts.map((slot) => (
      <ChartOrMissing slot={slot} />
    ))}
  </div>
);

export const FunnelTable: FC<{ funnel: FunnelView }> = ({ funnel }) => (
  <>
    <table id="funnel">
      <thead>
        <tr>
          <th scope="col">step</th>
          <th class="num" scope="col">
            people
          </th>
        </tr>
      </thead>
      <tbody>
        {funnel.population.map((step) => (
          <tr>
            <th scope="row">{step.step}</th>
            <td class="num">{f.count(step.people)}</td>
          </tr>
        ))}
      </tbody>
    </table>
    <table id="channels">
      <thead>
        <tr>
          <th scope="col">channel</th>
          {funnel.channels[0]?.steps.map((step) => (
            <th class="num" scope="col">
              {step.step} (people)
            </th>
          ))}
          <th scope="col">channel closed?</th>
        </tr>
      </thead>
      <tbody>
        {funnel.channels.map((channel) => (
          <tr>
            <th scope="row">
              {channel.channel}
              {channel.contactDetail ? <span class="detail"> (needs {channel.contactDetail})</span> : null}
            </th>
            {channel.steps.map((step) => (
              <td class="num">{f.count(step.people)}</td>
            ))}
            <td class="reason">{channel.blocked ?? 'open'}</td>
          </tr>
        ))}
      </tbody>
    </table>
  </>
);

export interface ModelPageProps {
  viewer: Viewer;
  record: ModelRecord;
  outcome: RunOutcome | null;
  charts: ChartSlot[];
  evaluation: {
    model: StoredEvaluation | null;
    rfm: StoredEvaluation | null;
    bgnbd: StoredEvaluation | null;
    window: { cutoff?: string; horizonDays?: number; rows?: number } | null;
  };
  buyers: { count: number | null; window: 'training' | 'evaluation' | null };
  drift: FeatureDrift[];
  driftNote: string | null;
  funnel: FunnelView | null;
  top: Array<{ contactId: number; score: number; rank: number }>;
  /** how the champion was chosen: the evaluation design, every candidate's AUC with its DeLong interval, the winner's lead */
  judged?: JudgedCandidates;
}

interface Interval {
  auc: number;
  low: number;
  high: number;
}

export interface JudgedCandidates {
  design: { kind: string; reason: string } | null;
  interval: Interval | null;
  candidates: Record<string, Interval | null> | null;
  margin: { over: string; difference: number; low: number; high: number } | null;
}

const intervalText = (value: Interval | null | undefined) =>
  value ? `${f.auc(value.auc)} [${f.auc(value.low)}, ${f.auc(value.high)}]` : 'n/a';

/** One model with a champion: how good it is, how it got there, what it runs on. */
export const ModelPage: FC<ModelPageProps> = ({
  viewer,
  record,
  outcome,
  charts,
  evaluation,
  buyers,
  drift,
  driftNote,
  funnel,
  top,
  judged,
}) => {
  const champion = record.champion!;
  const title = targetTitle(record.target, record.productName);
  const flagged = drift.filter((entry) => entry.flagged);
  const latest = record.history[record.history.length - 1] ?? null;
  return (
    <Layout title={title} viewer={viewer} active="models">
      <p class="hint">
        <a href="/ui/models">Models</a> › {title}
      </p>
      <h1>
        {title} <Badge status={champion.status} />
      </h1>
      <p class="lead">
        Champion v{champion.version} ({champion.algorithm}): {champion.decisionReason ?? 'no decision recorded'}.
      </p>
      {latest && latest.version !== champion.version ? (
        <div class="notice warn">
          The latest version, v{latest.version}, was not promoted ({latest.status}): {latest.decisionReason ?? 'no reason recorded'}.
        </div>
      ) : null}
      {outcome && outcome.status === 'not eligible' ? (
        <div class="notice warn">
          The latest run, #{outcome.runId}, did not retrain this target: {outcome.reason}.
        </div>
      ) : null}
      <dl class="facts">
        <dt>trained</dt>
        <dd>
          {f.dateTime(champion.trainedAt)} by run {champion.runId ? <a href={`/ui/runs/${champion.runId}`}>#{champion.runId}</a> : 'n/a'},
          promoted {f.dateTime(champion.promotedAt)}
        </dd>
        <dt>consent snapshot</dt>
        <dd>
          taken {f.dateTime(champion.consentSnapshotAt)}: {f.people(champion.populationSize)} with a valid profiling consent
        </dd>
        <dt>training cutoff and horizon</dt>
        <dd>
          features before {f.day(champion.trainingCutoff)}, buying within {f.count(champion.horizonDays)} days after it
        </dd>
        <dt>buyers in the {buyers.window ?? 'training'} window</dt>
        <dd>{f.people(buyers.count)}</dd>
        <dt>evaluation window</dt>
        <dd>
          {evaluation.window?.cutoff ?? 'n/a'} + {f.count(evaluation.window?.horizonDays)} days, {f.people(evaluation.window?.rows)}{' '}
          evaluated, {f.people(evaluation.model?.positives)} bought (base rate {f.percent(evaluation.model?.baseRate, 2)})
        </dd>
        <dt>evaluation design</dt>
        <dd>{judged?.design ? `${judged.design.kind}: ${judged.design.reason}` : 'out-of-time (recorded before designs were)'}</dd>
        <dt>ROC AUC, 95% interval (DeLong)</dt>
        <dd>{intervalText(judged?.interval)}</dd>
        <dt>candidates on the same rows</dt>
        <dd>
          {judged?.candidates
            ? Object.entries(judged.candidates)
                .map(([name, value]) => `${name} ${intervalText(value)}`)
                .join(' · ')
            : 'n/a'}
          {judged?.margin
            ? ` — ${champion.algorithm} ahead of ${judged.margin.over} by ${f.auc(judged.margin.difference)} [${f.auc(judged.margin.low)}, ${f.auc(judged.margin.high)}] (paired DeLong)`
            : ''}
        </dd>
        <dt>features</dt>
        <dd>
          {f.count(champion.featureCount)} declared features · <a href={modelPath(record.target, '/features')}>feature profile</a>
        </dd>
        <dt>live scores</dt>
        <dd>
          {record.liveSet
            ? `${f.people(record.liveSet.rowCount)} scored ${f.dateTime(record.liveSet.scoredAt)}${record.liveSet.modelVersionId === champion.id ? '' : ' (by another version)'}`
            : 'no live score set'}
        </dd>
        <dt>reproducibility</dt>
        <dd>
          code {champion.codeVersion}, training data hash <code>{champion.trainingDataHash.slice(0, 16)}…</code>
        </dd>
      </dl>

      <h2>Quality on the evaluation window</h2>
      <FiguresTable model={evaluation.model} rfm={evaluation.rfm} bgnbd={evaluation.bgnbd} />

      <h2>Charts</h2>
      <Charts charts={charts} />

      <h2>Input drift</h2>
      {driftNote ? (
        <div class="notice">{driftNote}</div>
      ) : (
        <>
          <p>
            Population stability index (PSI) per feature between the training sample and the population scored{' '}
            {record.liveSet ? f.dateTime(record.liveSet.scoredAt) : ''}, on the training sample's decile bins: {f.count(flagged.length)} of{' '}
            {f.count(drift.length)} features above {PSI_THRESHOLD} (flagged).
          </p>
          {flagged.length > 0 ? (
            <table id="drift">
              <thead>
                <tr>
                  <th scope="col">flagged feature</th>
                  <th class="num" scope="col">
                    PSI (unitless)
                  </th>
                </tr>
              </thead>
              <tbody>
                {flagged.map((entry) => (
                  <tr>
                    <th scope="row">{entry.feature}</th>
                    <td class="num">{f.decimal(entry.psi, 3)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          ) : null}
          {drift
            .filter((entry) => entry.exempt !== null)
            .map((entry) => (
              <p class="hint" id={`drift-exempt-${entry.feature}`}>
                {entry.feature} (PSI {f.decimal(entry.psi, 3)}) is never flagged: {entry.exempt}.
              </p>
            ))}
          <p>
            <a href={modelPath(record.target, '/features')}>Every feature's profile and PSI</a>
          </p>
        </>
      )}

      <h2>Consent funnel</h2>
      {funnel ? (
        <>
          <p>
            Recorded by run #{record.liveSet?.runId} when it scored, {f.dateTime(funnel.at)}: counts of people only.
          </p>
          <FunnelTable funnel={funnel} />
        </>
      ) : (
        <div class="notice">
          No consent funnel was recorded with the live scores of this model (scored before the funnel was recorded, or not scored).
        </div>
      )}

      <h2>Version history</h2>
      <Trend history={record.history} />
      <HistoryTable history={record.history} />

      <h2>Highest-scored people</h2>
      {top.length === 0 ? (
        <p class="muted">No live scores.</p>
      ) : (
        <>
          <p class="hint">Internal ids only; open one to see why they got their score (one person per page).</p>
          <table id="top">
            <thead>
              <tr>
                <th class="num" scope="col">
                  rank (1 = highest)
                </th>
                <th scope="col">person (internal id)</th>
                <th class="num" scope="col">
                  probability of buying within {f.count(champion.horizonDays)} days (%)
                </th>
              </tr>
            </thead>
            <tbody>
              {top.map((person) => (
                <tr>
                  <td class="num">{f.count(person.rank)}</td>
                  <td>
                    <a href={`/ui/people/${person.contactId}`}>#{person.contactId}</a>
                  </td>
                  <td class="num">{f.percent(person.score, 2)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </Layout>
  );
};

/** A target known to the registry or the catalogue but without a champion: why, and what there is. */
export const NoChampionPage: FC<{
  viewer: Viewer;
  target: ModelTarget;
  name: string | null;
  record: ModelRecord | null;
  status: string;
  reason: string;
  rules: string | null;
  charts: ChartSlot[];
}> = ({ viewer, target, name, record, status, reason, rules, charts }) => {
  const title = targetTitle(target, name);
  return (
    <Layout title={title} viewer={viewer} active="models">
      <p class="hint">
        <a href="/ui/models">Models</a> › {title}
      </p>
      <h1>
        {title} <Badge status={status} />
      </h1>
      <div class="notice warn" id="no-champion">
        <p>
          <strong>No live model for this target.</strong> {reason}
        </p>
        {rules ? <p class="hint">{rules}</p> : null}
      </div>
      {record && record.history.length > 0 ? (
        <>
          <h2>Versions</h2>
          <Charts charts={charts} />
          <HistoryTable history={record.history} />
        </>
      ) : (
        <p class="muted">{record ? 'The registry has this model but no version yet.' : 'No model has been registered for this target.'}</p>
      )}
    </Layout>
  );
};
