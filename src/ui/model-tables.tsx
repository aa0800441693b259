import type { FC } from 'hono/jsx';
import type { StoredEvaluation } from '../registry/model-metrics.ts';
import * as f from './format.ts';
import { Badge } from './layout.tsx';
import type { VersionFigures } from './model.repository.ts';

/*
 * The tables of a model page: its figures beside the baselines', and its versions' history.
 */

export const FiguresTable: FC<{ model: StoredEvaluation | null; rfm: StoredEvaluation | null; bgnbd: StoredEvaluation | null }> = ({
  model,
  rfm,
  bgnbd,
}) => {
  const rows: Array<{ label: string; value: (m: StoredEvaluation) => string }> = [
    { label: 'ROC AUC (0–1, 0.5 = chance)', value: (m) => f.auc(m.rocAuc) },
    { label: 'PR AUC, average precision (0–1)', value: (m) => f.auc(m.prAuc) },
    { label: 'log loss (nats per person, lower is better)', value: (m) => f.decimal(m.logLoss, 4) },
    { label: 'Brier score (mean squared error, 0–1)', value: (m) => f.decimal(m.brier, 4) },
    { label: 'expected calibration error, ECE (percentage points)', value: (m) => f.points(m.expectedCalibrationError) },
    { label: 'lift in the top decile (× base rate)', value: (m) => f.lift(m.gains?.[0]?.lift) },
    { label: 'buyers found in the top decile (% of all buyers)', value: (m) => f.percent(m.gains?.[0]?.cumulativeGain) },
    { label: 'buyers found in the top 3 deciles (% of all buyers)', value: (m) => f.percent(m.gains?.[2]?.cumulativeGain) },
  ];
  return (
    <table id="figures">
      <thead>
        <tr>
          <th scope="col">figure, evaluation window</th>
          <th class="num" scope="col">
            model
          </th>
          <th class="num" scope="col">
            RFM baseline
          </th>
          <th class="num" scope="col">
            BG/NBD baseline
          </th>
        </tr>
      </thead>
      <tbody>
        {rows.map((row) => (
          <tr>
            <th scope="row">{row.label}</th>
            <td class="num">{model ? row.value(model) : 'n/a'}</td>
            <td class="num">{rfm ? row.value(rfm) : 'n/a'}</td>
            <td class="num">{bgnbd ? row.value(bgnbd) : 'n/a'}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
};

export const HistoryTable: FC<{ history: VersionFigures[] }> = ({ history }) => (
  <table id="versions">
    <thead>
      <tr>
        <th scope="col">version</th>
        <th scope="col">status</th>
        <th scope="col">trained (UTC)</th>
        <th scope="col">run</th>
        <th class="num" scope="col">
          ROC AUC (0–1)
        </th>
        <th class="num" scope="col">
          RFM AUC (0–1)
        </th>
        <th class="num" scope="col">
          BG/NBD AUC (0–1)
        </th>
        <th class="num" scope="col">
          lift, top decile (×)
        </th>
        <th class="num" scope="col">
          ECE (pp)
        </th>
        <th scope="col">decision</th>
      </tr>
    </thead>
    <tbody>
      {[...history].reverse().map((v) => (
        <tr>
          <td>
            v{v.version} ({v.algorithm})
          </td>
          <td>
            <Badge status={v.status} />
          </td>
          <td>{f.dateTime(v.trainedAt)}</td>
          <td>{v.runId ? <a href={`/ui/runs/${v.runId}`}>#{v.runId}</a> : 'n/a'}</td>
          <td class="num">{f.auc(v.auc)}</td>
          <td class="num">{f.auc(v.rfmAuc)}</td>
          <td class="num">{f.auc(v.bgnbdAuc)}</td>
          <td class="num">{f.lift(v.liftTopDecile)}</td>
          <td class="num">{f.points(v.ece)}</td>
          <td class="reason">{v.decisionReason ?? ''}</td>
        </tr>
      ))}
    </tbody>
  </table>
);

/** Is it degrading? The last two versions' AUC, each on its own window, and the best one so far. */
export const Trend: FC<{ history: VersionFigures[] }> = ({ history }) => {
  const judged = history.filter((v) => v.auc !== null);
  const last = judged[judged.length - 1];
  const before = judged[judged.length - 2];
  if (!last || !before) return <p class="muted">One evaluated version so far: no trend yet.</p>;
  const best = judged.reduce((a, b) => ((b.auc as number) > (a.auc as number) ? b : a));
  const delta = (last.auc as number) - (before.auc as number);
  return (
    <p id="trend">
      ROC AUC of v{last.version} {f.auc(last.auc)} against v{before.version} {f.auc(before.auc)}: {f.aucDelta(delta)} (AUC points,{' '}
      {delta < -0.02 ? 'degrading' : delta > 0.02 ? 'improving' : 'stable'}); the best so far is v{best.version} at {f.auc(best.auc)}. Each
      version is judged on its own evaluation window.
    </p>
  );
};
