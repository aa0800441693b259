import type { FC } from 'hono/jsx';
import type { RunDetail, RunPart, RunListEntry as RunRow } from '../registry/pipeline-runs.repository.ts';
import * as f from './format.ts';
import { Badge, ChartOrMissing, type ChartSlot, Layout, type Viewer } from './layout.tsx';
import { modelPath, targetFromPath } from './paths.ts';

function outcomeSummary(outcomes: Record<string, number>): string {
  const parts = Object.entries(outcomes)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([status, n]) => `${f.count(n)} ${status}`);
  return parts.length > 0 ? parts.join(', ') : 'none';
}

/** An error as stored with a run, shortened: the full text is on the run's page. */
function shortError(error: string | null, limit = 160): string {
  if (!error) return '';
  return error.length > limit ? `${error.slice(0, limit)}…` : error;
}

export const RunsPage: FC<{ viewer: Viewer; runs: RunRow[]; chart: ChartSlot | null; olderThan: number | null }> = ({
  viewer,
  runs,
  chart,
  olderThan,
}) => (
  <Layout title="Runs" viewer={viewer} active="runs">
    <h1>Pipeline runs</h1>
    <p class="lead">
      The nightly runs (and backtests), newest first: their stages, how long they took, what they decided, and why they failed.
    </p>
    {chart ? <ChartOrMissing slot={chart} /> : null}
    {runs.length === 0 ? (
      <div class="notice">No pipeline run yet.</div>
    ) : (
      <table id="runs">
        <thead>
          <tr>
            <th scope="col">run</th>
            <th scope="col">kind, trigger</th>
            <th scope="col">status</th>
            <th scope="col">as of (UTC)</th>
            <th scope="col">started (UTC)</th>
            <th class="num" scope="col">
              wall-clock duration
            </th>
            <th class="num" scope="col">
              time in stages
            </th>
            <th class="num" scope="col">
              stages (count)
            </th>
            <th class="num" scope="col">
              population (people)
            </th>
            <th scope="col">target outcomes (targets)</th>
            <th scope="col">error</th>
          </tr>
        </thead>
        <tbody>
          {runs.map((run) => (
            <tr class={run.status === 'failed' ? 'problem' : undefined} data-run={String(run.id)}>
              <td>
                <a href={`/ui/runs/${run.id}`}>#{run.id}</a>
              </td>
              <td>
                {run.kind}, {run.trigger}
              </td>
              <td>
                <Badge status={run.status} />
              </td>
              <td>{f.dateTime(run.asOf)}</td>
              <td>{f.dateTime(run.startedAt)}</td>
              <td class="num">{f.duration(f.secondsBetween(run.startedAt, run.finishedAt))}</td>
              <td class="num">{f.duration(run.stages.reduce((sum, stage) => sum + stage.seconds, 0))}</td>
              <td class="num">{f.count(run.stages.length)}</td>
              <td class="num">{f.count(run.population)}</td>
              <td>{outcomeSummary(run.outcomes)}</td>
              <td class="reason">{shortError(run.error)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    )}
    {olderThan ? (
      <p>
        <a href={`/ui/runs?before=${olderThan}`}>Older runs</a>
      </p>
    ) : null}
  </Layout>
);

function targetLink(label: string): string | null {
  const target = targetFromPath(label.startsWith('product:') ? label.slice('product:'.length) : label);
  return target ? modelPath(target) : null;
}

const partsDone = (parts: RunPart[]) => parts.filter((part) => part.status === 'succeeded').length;

/** The jobs of a queued run (same columns as `cible runs show`); an inline run has none. */
const RunParts: FC<{ run: RunDetail }> = ({ run }) =>
  run.parts.length === 0 ? (
    <p class="muted">
      {run.driver === 'queue' ? 'No part taken by a worker yet.' : 'An inline run records no parts: one process ran every stage.'}
    </p>
  ) : (
    <>
      <p>
        {f.count(partsDone(run.parts))} of {f.count(run.parts.length)} parts done.
      </p>
      <table id="parts">
        <thead>
          <tr>
            <th scope="col">part</th>
            <th scope="col">status</th>
            <th class="num" scope="col">
              attempt
            </th>
            <th scope="col">worker</th>
            <th scope="col">started (UTC)</th>
            <th class="num" scope="col">
              duration (s)
            </th>
            <th class="num" scope="col">
              rows processed (rows)
            </th>
            <th scope="col">error</th>
          </tr>
        </thead>
        <tbody>
          {run.parts.map((part) => (
            <tr class={part.status === 'failed' ? 'problem' : undefined} data-part={part.part}>
              <td>{part.part}</td>
              <td>
                <Badge status={part.status} />
              </td>
              <td class="num">{f.count(part.attempt)}</td>
              <td>{part.worker ?? 'n/a'}</td>
              <td>{f.dateTime(part.startedAt)}</td>
              <td class="num">{f.decimal(f.secondsBetween(part.startedAt, part.finishedAt), 1)}</td>
              <td class="num">{f.count(part.rows)}</td>
              <td class="reason">{part.error ?? ''}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );

export const RunPage: FC<{ viewer: Viewer; run: RunDetail; chart: ChartSlot }> = ({ viewer, run, chart }) => {
  const total = run.stages.reduce((sum, stage) => sum + stage.seconds, 0);
  return (
    <Layout title={`Run #${run.id}`} viewer={viewer} active="runs">
      <p class="hint">
        <a href="/ui/runs">Runs</a> › #{run.id}
      </p>
      <h1>
        Run #{run.id} <Badge status={run.status} />
      </h1>
      <dl class="facts">
        <dt>kind, trigger</dt>
        <dd>
          {run.kind}, {run.trigger}
        </dd>
        <dt>as of</dt>
        <dd>
          {f.dateTime(run.asOf)}, horizon {f.count(run.horizonDays)} days
        </dd>
        <dt>started, finished</dt>
        <dd>
          {f.dateTime(run.startedAt)} → {f.dateTime(run.finishedAt)} ({f.duration(f.secondsBetween(run.startedAt, run.finishedAt))} wall
          clock, {f.duration(total)} in stages)
        </dd>
        <dt>population</dt>
        <dd>{f.people(run.population)} in the consent snapshot</dd>
        <dt>driver</dt>
        <dd id="run-driver">
          {run.driver === 'queue' ? 'job queue' : 'inline (one process)'}
          {run.shards === null ? '' : `, ${f.count(run.shards)} scoring shard${run.shards === 1 ? '' : 's'}`}
          {run.heartbeatAt ? `, last heartbeat ${f.dateTime(run.heartbeatAt)}` : ''}
        </dd>
        <dt>backend, peak memory</dt>
        <dd>
          {run.backend ?? 'n/a'}, {run.peakRssMb === null ? 'n/a' : `${f.count(run.peakRssMb)} MB`}
        </dd>
      </dl>
      {run.error ? (
        <div class="notice error" id="run-error">
          <strong>Error:</strong> {run.error}
        </div>
      ) : null}
      <h2>Stages</h2>
      <ChartOrMissing slot={chart} />
      <table id="stages">
        <thead>
          <tr>
            <th class="num" scope="col">
              order
            </th>
            <th scope="col">stage</th>
            <th class="num" scope="col">
              duration (s)
            </th>
            <th class="num" scope="col">
              share of the run (%)
            </th>
            <th class="num" scope="col">
              rows processed (rows)
            </th>
          </tr>
        </thead>
        <tbody>
          {run.stages.map((stage, index) => (
            <tr>
              <td class="num">{index + 1}</td>
              <td>{stage.stage}</td>
              <td class="num">{f.decimal(stage.seconds, 2)}</td>
              <td class="num">{f.percent(total > 0 ? stage.seconds / total : null)}</td>
              <td class="num">{f.count(stage.rows)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <h2>Parts</h2>
      <RunParts run={run} />
      <h2>Targets</h2>
      {run.targets.length === 0 ? (
        <p class="muted">No target outcome recorded.</p>
      ) : (
        <table id="targets">
          <thead>
            <tr>
              <th scope="col">target</th>
              <th scope="col">outcome</th>
              <th class="num" scope="col">
                version
              </th>
              <th class="num" scope="col">
                model AUC (0–1)
              </th>
              <th class="num" scope="col">
                RFM AUC (0–1)
              </th>
              <th class="num" scope="col">
                BG/NBD AUC (0–1)
              </th>
              <th class="num" scope="col">
                champion AUC, same window (0–1)
              </th>
              <th class="num" scope="col">
                scored (people)
              </th>
              <th scope="col">reason</th>
            </tr>
          </thead>
          <tbody>
            {run.targets.map((t) => {
              const href = targetLink(t.target);
              return (
                <tr>
                  <td>{href ? <a href={href}>{t.target}</a> : t.target}</td>
                  <td>
                    <Badge status={t.status} />
                  </td>
                  <td class="num">{t.version === null ? 'n/a' : `v${t.version}`}</td>
                  <td class="num">{f.auc(t.auc.model)}</td>
                  <td class="num">{f.auc(t.auc.rfm)}</td>
                  <td class="num">{f.auc(t.auc.bgnbd)}</td>
                  <td class="num">{f.auc(t.auc.champion)}</td>
                  <td class="num">{f.count(t.scored)}</td>
                  <td class="reason">{t.reason}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </Layout>
  );
};
