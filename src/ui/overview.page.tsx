import type { FC } from 'hono/jsx';
import * as f from './format.ts';
import { Badge, Layout, type Viewer } from './layout.tsx';
import { modelPath } from './paths.ts';
import { DEFAULT_DIRECTION, type OverviewEntry, type ReviewStatus, type SortDirection, type SortKey } from './review.service.ts';

interface Column {
  key: SortKey | null;
  label: string;
  numeric?: boolean;
}

const COLUMNS: Column[] = [
  { key: 'target', label: 'target' },
  { key: 'status', label: 'status and reason' },
  { key: 'trained', label: 'champion trained · consent snapshot (UTC)' },
  { key: 'population', label: 'population (people)', numeric: true },
  { key: 'buyers', label: 'buyers in the training window (people)', numeric: true },
  { key: 'auc', label: 'ROC AUC (0–1)', numeric: true },
  { key: 'lift', label: 'lift, top decile (× base rate)', numeric: true },
  { key: 'ece', label: 'calibration error, ECE (pp)', numeric: true },
  { key: 'rfm', label: 'vs RFM (Δ AUC)', numeric: true },
  { key: 'bgnbd', label: 'vs BG/NBD (Δ AUC)', numeric: true },
  { key: 'previous', label: 'vs previous version (Δ AUC, same window)', numeric: true },
  { key: 'problems', label: 'problems (count)' },
];

function sortHref(key: SortKey, current: SortKey, direction: SortDirection): string {
  const dir = key === current ? (direction === 'asc' ? 'desc' : 'asc') : DEFAULT_DIRECTION[key];
  return `/ui/models?sort=${key}&dir=${dir}`;
}

function targetName(entry: OverviewEntry): string {
  if (entry.target.kind === 'any') return 'any purchase';
  if (entry.target.kind === 'category') return `category ${entry.target.key}`;
  return entry.target.key;
}

const Row: FC<{ entry: OverviewEntry }> = ({ entry }) => {
  const c = entry.model?.champion ?? null;
  const delta = (baseline: number | null | undefined) => (c?.auc != null && baseline != null ? c.auc - baseline : null);
  return (
    <tr class={entry.problems.length > 0 ? 'problem' : undefined} data-target={entry.label} data-status={entry.status}>
      <td>
        <a href={modelPath(entry.target)}>{targetName(entry)}</a>
        {entry.name ? <div class="muted">{entry.name}</div> : null}
        <div class="muted">{c ? `champion v${c.version} (${c.algorithm})` : 'no champion'}</div>
      </td>
      <td class="status">
        <Badge status={entry.status} />
        <div class="reason">{entry.reason}</div>
      </td>
      <td class="when">
        {c ? (
          <>
            {f.dateTime(c.trainedAt)}
            <div class="muted">snapshot {f.dateTime(c.consentSnapshotAt)}</div>
          </>
        ) : (
          'n/a'
        )}
      </td>
      <td class="num">{c ? f.count(c.populationSize) : 'n/a'}</td>
      <td class="num" title={c?.buyersWindow === 'evaluation' ? 'older version: buyers in the evaluation window' : undefined}>
        {c ? f.count(c.buyers) : 'n/a'}
        {c?.buyersWindow === 'evaluation' ? '*' : ''}
      </td>
      <td class="num">{c ? f.auc(c.auc) : 'n/a'}</td>
      <td class="num">{c ? f.lift(c.liftTopDecile) : 'n/a'}</td>
      <td class="num">{c ? f.points(c.ece) : 'n/a'}</td>
      <td class="num">{c ? f.aucDelta(delta(c.rfmAuc)) : 'n/a'}</td>
      <td class="num">{c ? f.aucDelta(delta(c.bgnbdAuc)) : 'n/a'}</td>
      <td class="num">
        {c ? (c.previous ? `${f.aucDelta(delta(c.previous.auc))} vs v${c.previous.version}` : 'no previous champion') : 'n/a'}
      </td>
      <td>
        {entry.problems.length === 0 ? (
          <span class="muted">none</span>
        ) : (
          <ul class="problems">
            {entry.problems.map((problem) => (
              <li>{problem}</li>
            ))}
          </ul>
        )}
      </td>
    </tr>
  );
};

/** The catalogue's products that no run modelled: a row each, with why. */
const NeverModelled: FC<{ entries: OverviewEntry[] }> = ({ entries }) => (
  <details id="never-modelled" open={entries.length <= 50}>
    <summary>
      <h2 style="display: inline">Products without a model ({f.count(entries.length)})</h2>
    </summary>
    <p class="hint">
      In the catalogue, but no run has modelled them: a product is modelled once enough people bought it in each of the two latest windows
      before a run. Their pages say what the latest run required.
    </p>
    <table id="unmodelled">
      <thead>
        <tr>
          <th scope="col">product</th>
          <th scope="col">status and reason</th>
        </tr>
      </thead>
      <tbody>
        {entries.map((entry) => (
          <tr data-target={entry.label} data-status={entry.status}>
            <td>
              <a href={modelPath(entry.target)}>{targetName(entry)}</a>
              {entry.name ? <div class="muted">{entry.name}</div> : null}
            </td>
            <td class="status">
              <Badge status={entry.status} />
              <div class="reason">{entry.reason}</div>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  </details>
);

export const OverviewPage: FC<{
  viewer: Viewer;
  entries: OverviewEntry[];
  sort: SortKey;
  direction: SortDirection;
  latestRun: { id: number; finishedAt: Date | null } | null;
}> = ({ viewer, entries, sort, direction, latestRun }) => {
  const counts = new Map<ReviewStatus, number>();
  for (const entry of entries) counts.set(entry.status, (counts.get(entry.status) ?? 0) + 1);
  const withProblems = entries.filter((entry) => entry.problems.length > 0).length;
  // products no run looked at (too few buyers) get their own table: a large catalogue would bury the models
  const neverModelled = entries.filter((entry) => entry.model === null && entry.outcome === null);
  const judged = entries.filter((entry) => entry.model !== null || entry.outcome !== null);
  return (
    <Layout title="Models" viewer={viewer} active="models">
      <h1>Models</h1>
      <p class="lead">
        {f.count(entries.length)} targets: {f.count(counts.get('promoted') ?? 0)} promoted, {f.count(counts.get('kept old') ?? 0)} kept old,{' '}
        {f.count(counts.get('rejected') ?? 0)} rejected, {f.count(counts.get('not enough data') ?? 0)} without enough data
        {neverModelled.length > 0 ? ` (${f.count(neverModelled.length)} never modelled, listed below the models)` : ''};{' '}
        {f.count(withProblems)} with problems.{' '}
        {latestRun ? (
          <>
            Statuses as of the latest pipeline run, <a href={`/ui/runs/${latestRun.id}`}>#{latestRun.id}</a> (finished{' '}
            {f.dateTime(latestRun.finishedAt)}).
          </>
        ) : (
          'No pipeline run has finished yet.'
        )}
      </p>
      {judged.length === 0 ? (
        <div class="notice">No model yet: run the pipeline (`cible pipeline run`) and come back.</div>
      ) : (
        <div class="scroll">
          <table id="models">
            <caption class="hint" style="caption-side: bottom; text-align: left">
              Figures of the champion on its evaluation window (the horizon after its training cutoff, never seen in training). Δ AUC is the
              champion's AUC minus the other's; * = buyers in the evaluation window (versions trained before the training window was
              recorded). Click a column header to sort.
            </caption>
            <thead>
              <tr>
                {COLUMNS.map((column) => (
                  <th
                    class={column.numeric ? 'num' : undefined}
                    scope="col"
                    aria-sort={column.key === sort ? (direction === 'asc' ? 'ascending' : 'descending') : undefined}
                  >
                    {column.key ? (
                      <a href={sortHref(column.key, sort, direction)}>
                        {column.label}
                        {column.key === sort ? (direction === 'asc' ? ' ▲' : ' ▼') : ''}
                      </a>
                    ) : (
                      column.label
                    )}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {judged.map((entry) => (
                <Row entry={entry} />
              ))}
            </tbody>
          </table>
        </div>
      )}
      {neverModelled.length > 0 ? <NeverModelled entries={neverModelled} /> : null}
    </Layout>
  );
};
