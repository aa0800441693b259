import { createHash } from 'node:crypto';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

/*
 * The review pages' charts: each a plain function from data to a Vega-Lite spec, with a title,
 * axis titles that carry their unit, and a description read out as the chart's label. They are
 * rendered to SVG on the server (no script reaches the browser). Every chart shows aggregates
 * (curves, bins, deciles, counts): never a row about a person.
 */

type Spec = Record<string, unknown>;

export interface Chart {
  /** a stable name, used as the figure's id (`chart-<id>`) */
  id: string;
  title: string;
  /** what the chart shows, in words: the SVG's aria-label */
  description: string;
  /** how many data points (rows) the chart draws */
  points: number;
  spec: Spec;
}

const FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif';

export const SERIES_COLOURS = {
  model: '#1f5fa8',
  rfm: '#d0842c',
  bgnbd: '#4f9a4c',
  reference: '#8c8c8c',
  flagged: '#c0392b',
  buyers: '#1f5fa8',
  nonBuyers: '#d0842c',
} as const;

const CONFIG = {
  font: FONT,
  background: 'white',
  padding: 8,
  view: { stroke: '#ddd' },
  axis: { labelFontSize: 11, titleFontSize: 12, titleFontWeight: 'normal', titleColor: '#333', labelColor: '#444', gridColor: '#eee', domainColor: '#888', tickColor: '#888' },
  title: { fontSize: 14, fontWeight: 600, anchor: 'start', color: '#222', subtitleFontSize: 11, subtitleColor: '#555', offset: 10 },
  legend: { orient: 'bottom', labelFontSize: 11, titleFontSize: 11, titleFontWeight: 'normal', symbolSize: 80, labelLimit: 280 },
  // the SVG carries one label for the whole chart (set on the <svg>): no ARIA per mark
  aria: false,
};

const WIDTH = 340;
const HEIGHT = 240;

function topLevel(title: string, subtitle: string | null, description: string, body: Spec): Spec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: subtitle ? { text: title, subtitle } : { text: title },
    description,
    config: CONFIG,
    ...body,
  };
}

const percent = (title: string, domain?: [number, number]): Spec => ({
  type: 'quantitative',
  title,
  axis: { format: '.0%' },
  ...(domain ? { scale: { domain } } : {}),
});

function colourScale(domain: string[], range: string[]): Spec {
  return { scale: { domain, range }, legend: { title: null } };
}

const fixed = (value: number | null | undefined, digits: number) => (value === null || value === undefined || !Number.isFinite(value) ? 'n/a' : value.toFixed(digits));

// ---- evaluation charts ----------------------------------------------------------------------

export interface RocInput {
  falsePositiveRate: number;
  truePositiveRate: number;
}

export function rocChart(points: readonly RocInput[], auc: number | null): Chart {
  const values = points.map((p) => ({ fpr: p.falsePositiveRate, tpr: p.truePositiveRate, series: 'model' }));
  const chance = [
    { fpr: 0, tpr: 0, series: 'chance (random order)' },
    { fpr: 1, tpr: 1, series: 'chance (random order)' },
  ];
  const x = { field: 'fpr', ...percent('false positive rate (% of non-buyers selected)', [0, 1]) };
  const y = { field: 'tpr', ...percent('true positive rate (% of buyers selected)', [0, 1]) };
  const colour = { field: 'series', type: 'nominal', ...colourScale(['model', 'chance (random order)'], [SERIES_COLOURS.model, SERIES_COLOURS.reference]) };
  const description = `ROC curve of the model on the evaluation window: ${values.length} points, area under the curve ${fixed(auc, 3)}`;
  return {
    id: 'roc',
    title: 'ROC curve',
    description,
    points: values.length,
    spec: topLevel('ROC curve', `area under the curve (AUC) ${fixed(auc, 3)}, evaluation window`, description, {
      width: WIDTH,
      height: HEIGHT,
      layer: [
        { data: { values: chance }, mark: { type: 'line', strokeDash: [4, 4], strokeWidth: 1 }, encoding: { x, y, color: colour } },
        { data: { values }, mark: { type: 'line', strokeWidth: 2 }, encoding: { x, y, color: colour } },
      ],
    }),
  };
}

export interface GainsInput {
  decile: number;
  populationShare: number;
  cumulativeGain: number;
  lift: number;
}

export type Series = 'model' | 'RFM' | 'BG/NBD';
const SERIES_ORDER: Series[] = ['model', 'RFM', 'BG/NBD'];
const SERIES_RANGE = [SERIES_COLOURS.model, SERIES_COLOURS.rfm, SERIES_COLOURS.bgnbd];

export function gainsChart(gains: Partial<Record<Series, readonly GainsInput[] | null>>): Chart {
  const values: Array<{ population: number; gain: number; series: string }> = [];
  for (const series of SERIES_ORDER) {
    const rows = gains[series];
    if (!rows || rows.length === 0) continue;
    values.push({ population: 0, gain: 0, series });
    let population = 0;
    for (const row of rows) {
      population += row.populationShare;
      if (Number.isFinite(row.cumulativeGain)) values.push({ population, gain: row.cumulativeGain, series });
    }
  }
  const random = [
    { population: 0, gain: 0, series: 'random order' },
    { population: 1, gain: 1, series: 'random order' },
  ];
  const x = { field: 'population', ...percent('people contacted, highest scores first (% of population)', [0, 1]) };
  const y = { field: 'gain', ...percent('buyers reached (% of all buyers in the window)', [0, 1]) };
  const colour = { field: 'series', type: 'nominal', ...colourScale([...SERIES_ORDER, 'random order'], [...SERIES_RANGE, SERIES_COLOURS.reference]) };
  const description = `Cumulative gains by decile for the model and its baselines: ${values.length} points`;
  return {
    id: 'gains',
    title: 'Cumulative gains',
    description,
    points: values.length,
    spec: topLevel('Cumulative gains by decile', 'share of the buyers found in the top deciles, evaluation window', description, {
      width: WIDTH,
      height: HEIGHT,
      layer: [
        { data: { values: random }, mark: { type: 'line', strokeDash: [4, 4], strokeWidth: 1 }, encoding: { x, y, color: colour } },
        { data: { values }, mark: { type: 'line', point: { size: 28 }, strokeWidth: 2 }, encoding: { x, y, color: colour } },
      ],
    }),
  };
}

export function liftChart(gains: Partial<Record<Series, readonly GainsInput[] | null>>): Chart {
  const values: Array<{ decile: number; lift: number; series: string }> = [];
  for (const series of SERIES_ORDER) {
    for (const row of gains[series] ?? []) if (Number.isFinite(row.lift)) values.push({ decile: row.decile, lift: row.lift, series });
  }
  const description = `Lift per decile (buying rate in the decile over the overall rate) for the model and its baselines: ${values.length} bars`;
  return {
    id: 'lift',
    title: 'Lift by decile',
    description,
    points: values.length,
    spec: topLevel('Lift by decile', 'buying rate in each decile ÷ overall buying rate; 1 = no better than random', description, {
      width: WIDTH,
      height: HEIGHT,
      layer: [
        {
          data: { values },
          mark: { type: 'bar' },
          encoding: {
            x: { field: 'decile', type: 'ordinal', title: 'decile of score (1 = highest 10%)', axis: { labelAngle: 0 } },
            xOffset: { field: 'series', type: 'nominal', sort: SERIES_ORDER },
            y: { field: 'lift', type: 'quantitative', title: 'lift (× overall buying rate)' },
            color: { field: 'series', type: 'nominal', ...colourScale(SERIES_ORDER, SERIES_RANGE) },
          },
        },
        { data: { values: [{ lift: 1 }] }, mark: { type: 'rule', strokeDash: [4, 4], color: SERIES_COLOURS.reference }, encoding: { y: { field: 'lift', type: 'quantitative' } } },
      ],
    }),
  };
}

export interface CalibrationInput {
  lower: number;
  upper: number;
  count: number;
  meanPredicted: number | null;
  observedRate: number | null;
}

export function reliabilityChart(bins: readonly CalibrationInput[], ece: number | null): Chart {
  const upper = Math.max(...bins.map((bin) => bin.upper), 0) || 1;
  const filled = bins.filter((bin) => bin.count > 0 && Number.isFinite(bin.meanPredicted) && Number.isFinite(bin.observedRate));
  const points = filled.map((bin) => ({ predicted: bin.meanPredicted, observed: bin.observedRate, count: bin.count }));
  const counts = bins.map((bin) => ({ lower: bin.lower, upper: bin.upper, count: bin.count }));
  const top = Math.max(upper, ...points.map((p) => p.observed as number));
  const description = `Reliability diagram: mean predicted probability against the observed buying rate in ${filled.length} non-empty bins, with the number of people per bin below`;
  const x = (title: string | null) => ({ field: 'predicted', ...percent(title ?? '', [0, upper]), ...(title === null ? { axis: { format: '.1%', title: null, labels: false } } : {}) });
  return {
    id: 'reliability',
    title: 'Reliability (calibration)',
    description,
    points: points.length + counts.length,
    spec: topLevel('Reliability (calibration) diagram', `expected calibration error (ECE) ${ece === null ? 'n/a' : `${(ece * 100).toFixed(2)} percentage points`}; on the dashed line predictions match reality`, description, {
      vconcat: [
        {
          width: WIDTH,
          height: 200,
          layer: [
            {
              data: { values: [{ predicted: 0, observed: 0 }, { predicted: top, observed: top }] },
              mark: { type: 'line', strokeDash: [4, 4], color: SERIES_COLOURS.reference, clip: true },
              encoding: { x: x(null), y: { field: 'observed', type: 'quantitative' } },
            },
            {
              data: { values: points },
              mark: { type: 'line', point: { size: 40 }, color: SERIES_COLOURS.model, strokeWidth: 2 },
              encoding: {
                x: { ...x(null), axis: { format: '.1%', title: null } },
                y: { field: 'observed', type: 'quantitative', title: 'observed buying rate (%)', axis: { format: '.1%' } },
              },
            },
          ],
        },
        {
          width: WIDTH,
          height: 80,
          data: { values: counts },
          mark: { type: 'rect', color: '#9bb7d6', stroke: 'white' },
          encoding: {
            x: { field: 'lower', type: 'quantitative', title: 'predicted probability (%)', axis: { format: '.1%' }, scale: { domain: [0, upper] } },
            x2: { field: 'upper' },
            y: { field: 'count', type: 'quantitative', title: 'people per bin' },
          },
        },
      ],
    }),
  };
}

export interface HistogramInput {
  lower: number;
  upper: number;
  buyers: number;
  nonBuyers: number;
}

export function scoreDistributionChart(bins: readonly HistogramInput[]): Chart {
  const buyers = bins.reduce((sum, bin) => sum + bin.buyers, 0);
  const nonBuyers = bins.reduce((sum, bin) => sum + bin.nonBuyers, 0);
  const values = bins.flatMap((bin) => [
    { lower: bin.lower, upper: bin.upper, share: buyers > 0 ? bin.buyers / buyers : 0, people: bin.buyers, group: 'buyers' },
    { lower: bin.lower, upper: bin.upper, share: nonBuyers > 0 ? bin.nonBuyers / nonBuyers : 0, people: bin.nonBuyers, group: 'non-buyers' },
  ]);
  const upper = Math.max(...bins.map((bin) => bin.upper), 0) || 1;
  const description = `Distribution of predicted probabilities for the ${buyers} buyers and ${nonBuyers} non-buyers of the evaluation window, in ${bins.length} bins`;
  return {
    id: 'score-distribution',
    title: 'Score distribution',
    description,
    points: values.length,
    spec: topLevel('Score distribution: buyers vs non-buyers', 'each group sums to 100%; the further apart, the better the ranking', description, {
      width: WIDTH,
      height: HEIGHT,
      data: { values },
      mark: { type: 'rect', opacity: 0.55, stroke: 'white', strokeWidth: 0.5 },
      encoding: {
        x: { field: 'lower', type: 'quantitative', title: 'predicted probability (%)', axis: { format: '.1%' }, scale: { domain: [0, upper] } },
        x2: { field: 'upper' },
        y: { field: 'share', ...percent('share of the group in the bin (%)'), stack: null },
        color: { field: 'group', type: 'nominal', ...colourScale(['buyers', 'non-buyers'], [SERIES_COLOURS.buyers, SERIES_COLOURS.nonBuyers]) },
      },
    }),
  };
}

export function importanceChart(importance: ReadonlyArray<{ group: string; aucDrop: number | null }>): Chart {
  const values = importance.filter((entry) => entry.aucDrop !== null && Number.isFinite(entry.aucDrop)).map((entry) => ({ group: entry.group, drop: entry.aucDrop }));
  const description = `Permutation importance of ${values.length} feature groups: how much the AUC drops when the group is shuffled`;
  return {
    id: 'importance',
    title: 'Feature importance',
    description,
    points: values.length,
    spec: topLevel('Feature importance (permutation)', 'drop in AUC when a feature group is shuffled on the evaluation window', description, {
      width: WIDTH,
      height: Math.max(120, values.length * 20),
      data: { values },
      mark: { type: 'bar', color: SERIES_COLOURS.model },
      encoding: {
        y: { field: 'group', type: 'nominal', sort: '-x', title: 'feature group', axis: { labelLimit: 420 } },
        x: { field: 'drop', type: 'quantitative', title: 'AUC drop (AUC points, 0–1 scale)', axis: { format: '.3f' } },
      },
    }),
  };
}

export interface HistoryInput {
  version: number;
  status: string;
  auc: number | null;
  rfmAuc: number | null;
  bgnbdAuc: number | null;
}

export function historyChart(versions: readonly HistoryInput[]): Chart {
  const values: Array<{ version: string; auc: number; series: string; status: string }> = [];
  const ordered = [...versions].sort((a, b) => a.version - b.version);
  for (const v of ordered) {
    const label = `v${v.version}`;
    if (v.auc !== null && Number.isFinite(v.auc)) values.push({ version: label, auc: v.auc, series: 'model', status: v.status });
    if (v.rfmAuc !== null && Number.isFinite(v.rfmAuc)) values.push({ version: label, auc: v.rfmAuc, series: 'RFM', status: v.status });
    if (v.bgnbdAuc !== null && Number.isFinite(v.bgnbdAuc)) values.push({ version: label, auc: v.bgnbdAuc, series: 'BG/NBD', status: v.status });
  }
  const description = `AUC of each of the ${ordered.length} versions on its own evaluation window, with both baselines on the same windows`;
  return {
    id: 'history',
    title: 'Metric history',
    description,
    points: values.length,
    spec: topLevel('AUC across versions', 'each version judged on its own evaluation window; a falling model line means degrading', description, {
      width: WIDTH,
      height: 200,
      data: { values },
      mark: { type: 'line', point: { size: 36 }, strokeWidth: 2 },
      encoding: {
        x: { field: 'version', type: 'ordinal', sort: ordered.map((v) => `v${v.version}`), title: 'model version', axis: { labelAngle: 0 } },
        y: { field: 'auc', type: 'quantitative', title: 'ROC AUC (0.5 = chance, 1 = perfect)', scale: { zero: false }, axis: { format: '.2f' } },
        color: { field: 'series', type: 'nominal', ...colourScale(SERIES_ORDER, SERIES_RANGE) },
      },
    }),
  };
}

export function driftChart(features: ReadonlyArray<{ feature: string; psi: number }>, threshold: number, shown = 20): Chart {
  const top = [...features].sort((a, b) => b.psi - a.psi).slice(0, shown);
  const values = top.map((entry) => ({ feature: entry.feature, psi: entry.psi, flag: entry.psi > threshold ? `above ${threshold}` : `at most ${threshold}` }));
  const description = `Population stability index of the ${values.length} most shifted features between the training sample and the scored population; ${values.filter((v) => v.psi > threshold).length} above ${threshold}`;
  return {
    id: 'drift',
    title: 'Input drift',
    description,
    points: values.length,
    spec: topLevel(
      'Input drift: population stability index (PSI)',
      `training sample vs scored population, ${values.length} most shifted of ${features.length} features; dashed line at ${threshold}`,
      description,
      {
        width: WIDTH,
        height: Math.max(120, values.length * 16),
        layer: [
          {
            data: { values },
            mark: { type: 'bar' },
            encoding: {
              y: { field: 'feature', type: 'nominal', sort: '-x', title: 'feature', axis: { labelLimit: 420 } },
              x: { field: 'psi', type: 'quantitative', title: 'PSI (unitless; > 0.25 major shift)', axis: { format: '.2~f' } },
              color: { field: 'flag', type: 'nominal', ...colourScale([`at most ${threshold}`, `above ${threshold}`], [SERIES_COLOURS.model, SERIES_COLOURS.flagged]) },
            },
          },
          { data: { values: [{ psi: threshold }] }, mark: { type: 'rule', strokeDash: [4, 4], color: SERIES_COLOURS.flagged }, encoding: { x: { field: 'psi', type: 'quantitative' } } },
        ],
      },
    ),
  };
}

export interface FunnelStep {
  step: string;
  people: number;
}

export interface ChannelSteps {
  channel: string;
  steps: FunnelStep[];
}

export function funnelChart(population: readonly FunnelStep[], channels: readonly ChannelSteps[]): Chart {
  const overall = population.map((step, order) => ({ ...step, order }));
  const perChannel = channels.flatMap((channel) => channel.steps.map((step, order) => ({ channel: channel.channel, ...step, order })));
  const stepNames = channels[0]?.steps.map((step) => step.step) ?? [];
  const description = `Consent funnel of the population: ${overall.length} steps from the contact base to the scored people, then who may be contacted on each of ${channels.length} channels`;
  const panels: Spec[] = [
    {
      width: WIDTH,
      height: overall.length * 26,
      data: { values: overall },
      mark: { type: 'bar', color: SERIES_COLOURS.model },
      encoding: {
        y: { field: 'step', type: 'nominal', sort: overall.map((step) => step.step), title: null, axis: { labelLimit: 420 } },
        x: { field: 'people', type: 'quantitative', title: 'people', axis: { format: ',d' } },
      },
    },
  ];
  if (perChannel.length > 0) {
    panels.push({
      width: WIDTH,
      height: channels.length * 48,
      data: { values: perChannel },
      mark: { type: 'bar' },
      encoding: {
        y: { field: 'channel', type: 'nominal', title: 'channel' },
        yOffset: { field: 'step', type: 'nominal', sort: stepNames },
        x: { field: 'people', type: 'quantitative', title: 'people who may be contacted (after each rule, cumulative)', axis: { format: ',d' } },
        color: { field: 'step', type: 'nominal', sort: stepNames, scale: { scheme: 'blues', reverse: true }, legend: { title: null, orient: 'bottom', columns: 2 } },
      },
    });
  }
  return {
    id: 'funnel',
    title: 'Consent funnel',
    description,
    points: overall.length + perChannel.length,
    spec: topLevel('Consent funnel of the population', 'counts of people; each rule keeps fewer', description, { vconcat: panels, resolve: { scale: { x: 'independent', color: 'independent' } } }),
  };
}

// ---- runs ----------------------------------------------------------------------------------

export function runDurationsChart(runs: ReadonlyArray<{ id: number; minutes: number; status: string }>): Chart {
  const values = [...runs].sort((a, b) => a.id - b.id).map((run) => ({ run: `#${run.id}`, minutes: run.minutes, status: run.status }));
  const description = `Time spent in the stages of the ${values.length} most recent runs, in minutes`;
  return {
    id: 'run-durations',
    title: 'Run durations',
    description,
    points: values.length,
    spec: topLevel('Run durations', 'time spent in the stages of each run (sum of the stage timings)', description, {
      width: Math.max(WIDTH, values.length * 18),
      height: 160,
      data: { values },
      mark: { type: 'bar' },
      encoding: {
        x: { field: 'run', type: 'ordinal', sort: values.map((v) => v.run), title: 'run', axis: { labelAngle: -45 } },
        y: { field: 'minutes', type: 'quantitative', title: 'time in stages (minutes)' },
        color: {
          field: 'status',
          type: 'nominal',
          ...colourScale(['succeeded', 'failed', 'running', 'queued', 'cancelled'], ['#4f9a4c', '#c0392b', '#1f5fa8', '#8c8c8c', '#d0842c']),
        },
      },
    }),
  };
}

export function stageDurationsChart(stages: ReadonlyArray<{ stage: string; seconds: number }>): Chart {
  const values = stages.map((stage, order) => ({ stage: `${order + 1}. ${stage.stage}`, seconds: stage.seconds }));
  const description = `Duration of each of the ${values.length} stages of the run, in seconds`;
  return {
    id: 'stages',
    title: 'Stage durations',
    description,
    points: values.length,
    spec: topLevel('Stage durations', 'in the order they ran', description, {
      width: WIDTH,
      height: Math.max(100, values.length * 20),
      data: { values },
      mark: { type: 'bar', color: SERIES_COLOURS.model },
      encoding: {
        y: { field: 'stage', type: 'nominal', sort: values.map((v) => v.stage), title: null, axis: { labelLimit: 420 } },
        x: { field: 'seconds', type: 'quantitative', title: 'duration (seconds)' },
      },
    }),
  };
}

// ---- rendering -----------------------------------------------------------------------------

export interface ChartSize {
  width: number;
  height: number;
}

export interface ChartRenderer {
  /** the chart as an SVG document with a <title> and an aria-label */
  render(chart: Chart): Promise<string>;
  /** the hash of the chart's spec: the same spec always draws the same SVG */
  key(chart: Chart): string;
  /** whether the chart's SVG is drawn already (or being drawn) */
  cached(chart: Chart): boolean;
  /**
   * The size the chart's SVG has, in CSS pixels, without drawing it: exact once this spec was
   * drawn, else estimated from the spec's own size and the margins (axes, titles, legends) the
   * last chart of the same id needed.
   */
  size(chart: Chart): ChartSize;
}

/** Approximate advance widths of a sans-serif font, in ems. */
function charWidth(ch: string): number {
  if (ch === ' ') return 0.34;
  if ("ilj.,:;|!'".includes(ch)) return 0.32;
  if ('ftr()[]-/'.includes(ch)) return 0.42;
  if ('mwMW%'.includes(ch)) return 0.94;
  if (ch >= '0' && ch <= '9') return 0.66;
  if (ch >= 'A' && ch <= 'Z') return 0.74;
  return 0.62;
}

/**
 * Without a canvas, Vega guesses every character at 0.8 em: labels get truncated early and
 * charts get wide margins. A per-character guess is close enough for axis labels and titles;
 * Vega documents replacing textMetrics.width for this (vl-convert does the same).
 */
function useTextEstimate(): void {
  // re-exported from vega-scenegraph at run time, missing from vega's type declarations
  const metrics = (vega as unknown as { textMetrics?: { width: (item: { fontSize?: number; limit?: number; text?: unknown }, text?: unknown) => number } }).textMetrics;
  if (!metrics) return;
  metrics.width = (item, text) => {
    const value = String(text ?? item.text ?? '').trim();
    const size = item.fontSize != null ? Number(item.fontSize) || 0 : 11;
    let ems = 0;
    for (const ch of value) ems += charWidth(ch);
    const width = ems * size;
    // the width of the text as Vega will draw it: truncated to its limit
    return item.limit && item.limit > 0 ? Math.min(width, item.limit) : width;
  };
}

function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

async function renderSvg(chart: Chart): Promise<string> {
  const view = new vega.View(vega.parse(compile(chart.spec as unknown as TopLevelSpec).spec), { renderer: 'none' });
  try {
    const svg = await view.toSVG();
    // one accessible name for the whole picture; the title doubles as a tooltip
    return svg.replace(/^<svg /, `<svg role="img" aria-label="${escapeXml(chart.description)}" `).replace(/^(<svg[^>]*>)/, `$1<title>${escapeXml(chart.title)}</title>`);
  } finally {
    view.finalize();
  }
}

/** The width and height of the plotting areas a spec declares (concatenated views stacked). */
function declaredSize(spec: Spec): ChartSize {
  const own = (view: Spec): ChartSize => ({ width: typeof view.width === 'number' ? view.width : WIDTH, height: typeof view.height === 'number' ? view.height : HEIGHT });
  if (Array.isArray(spec.vconcat)) {
    const views = (spec.vconcat as Spec[]).map(own);
    return { width: Math.max(...views.map((v) => v.width)), height: views.reduce((sum, v) => sum + v.height, 0) };
  }
  if (Array.isArray(spec.hconcat)) {
    const views = (spec.hconcat as Spec[]).map(own);
    return { width: views.reduce((sum, v) => sum + v.width, 0), height: Math.max(...views.map((v) => v.height)) };
  }
  return own(spec);
}

/**
 * What each chart adds around its plotting area (axes, title, legend, padding), as drawn for
 * the review fixtures: the estimate before any chart of the kind has been drawn.
 */
const DEFAULT_MARGINS: Record<string, ChartSize> = {
  roc: { width: 77, height: 123 },
  gains: { width: 78, height: 146 },
  lift: { width: 101, height: 116 },
  reliability: { width: 258, height: 126 },
  'score-distribution': { width: 66, height: 124 },
  importance: { width: 135, height: 87 },
  history: { width: 184, height: 132 },
  drift: { width: 283, height: 117 },
  funnel: { width: 245, height: 187 },
  'run-durations': { width: 75, height: 123 },
  stages: { width: 149, height: 87 },
};
const FALLBACK_MARGIN: ChartSize = { width: 120, height: 110 };

/** The size an SVG drawn by Vega declares on its root element. */
function svgSize(svg: string): ChartSize | null {
  const root = /^<svg\b[^>]*>/.exec(svg)?.[0] ?? '';
  const width = Number(/\swidth="([\d.]+)"/.exec(root)?.[1]);
  const height = Number(/\sheight="([\d.]+)"/.exec(root)?.[1]);
  return width > 0 && height > 0 ? { width: Math.ceil(width), height: Math.ceil(height) } : null;
}

/**
 * Renders charts with Vega (Vega-Lite compiled, then drawn headless to SVG), remembering the
 * last `maxEntries` results by the hash of their spec: a spec holds all its data, so the same
 * spec always draws the same SVG, and a model version's charts are drawn once, not per view.
 * The sizes of the drawn SVGs are kept longer (a few numbers each), for the pages' <img>.
 */
export function createChartRenderer(options: { maxEntries?: number; maxSizes?: number } = {}): ChartRenderer {
  const maxEntries = options.maxEntries ?? 300;
  const maxSizes = options.maxSizes ?? 10_000;
  useTextEstimate();
  const cache = new Map<string, Promise<string>>();
  const sizes = new Map<string, ChartSize>();
  const margins = new Map<string, ChartSize>();
  // a spec's hash, remembered for the chart object it was computed for (a page and its chart request each hash once)
  const keys = new WeakMap<Chart, string>();
  const key = (chart: Chart): string => {
    let hash = keys.get(chart);
    if (!hash) {
      hash = createHash('sha1').update(JSON.stringify(chart.spec)).digest('hex');
      keys.set(chart, hash);
    }
    return hash;
  };
  const remember = (chart: Chart, hash: string, svg: string): void => {
    const size = svgSize(svg);
    if (!size) return;
    sizes.delete(hash);
    sizes.set(hash, size);
    while (sizes.size > maxSizes) sizes.delete(sizes.keys().next().value as string);
    const declared = declaredSize(chart.spec);
    margins.set(chart.id, { width: size.width - declared.width, height: size.height - declared.height });
  };
  return {
    key,
    cached: (chart) => cache.has(key(chart)),
    size(chart) {
      const known = sizes.get(key(chart));
      if (known) return known;
      const declared = declaredSize(chart.spec);
      const margin = margins.get(chart.id) ?? DEFAULT_MARGINS[chart.id] ?? FALLBACK_MARGIN;
      return { width: Math.max(1, Math.round(declared.width + margin.width)), height: Math.max(1, Math.round(declared.height + margin.height)) };
    },
    render(chart) {
      const hash = key(chart);
      const hit = cache.get(hash);
      if (hit) {
        cache.delete(hash);
        cache.set(hash, hit);
        return hit;
      }
      const rendered = renderSvg(chart);
      cache.set(hash, rendered);
      rendered.then(
        (svg) => remember(chart, hash, svg),
        () => cache.delete(hash),
      );
      while (cache.size > maxEntries) cache.delete(cache.keys().next().value as string);
      return rendered;
    },
  };
}
