import type { CalibrationInput, GainsInput, HistogramInput, RocInput } from '../../registry/model-metrics.ts';
import {
  type Chart,
  colourScale,
  fixed,
  HEIGHT,
  percent,
  SERIES_COLOURS,
  SERIES_ORDER,
  SERIES_RANGE,
  type Series,
  topLevel,
  WIDTH,
} from './chart.ts';

/*
 * The charts of a model's evaluation window: ROC, cumulative gains, lift, reliability, score
 * distribution, permutation importance. Plain functions from stored figures to specs.
 */

/** One curve of the ROC chart: the model's, or a baseline's on the same window. */
export interface RocSeries {
  series: Series;
  points: readonly RocInput[];
  auc: number | null;
  /** 'curve': every threshold (at most 101 points); 'deciles': the ten decile cut-offs of its gains table */
  resolution: 'curve' | 'deciles';
}

const CHANCE = 'chance (random order)';

/** The model's ROC curve, with the baselines' on the same evaluation window when they are recorded. */
export function rocChart(curves: readonly RocSeries[]): Chart {
  const drawn = curves.filter((curve) => curve.points.length > 0);
  const label = (curve: RocSeries) =>
    `${curve.series}, AUC ${fixed(curve.auc, 3)}${curve.resolution === 'deciles' ? ' (decile cut-offs)' : ''}`;
  const values = drawn.flatMap((curve) =>
    curve.points.map((p) => ({ fpr: p.falsePositiveRate, tpr: p.truePositiveRate, series: label(curve) })),
  );
  const chance = [
    { fpr: 0, tpr: 0, series: CHANCE },
    { fpr: 1, tpr: 1, series: CHANCE },
  ];
  const x = { field: 'fpr', ...percent('false positive rate (% of non-buyers selected)', [0, 1]) };
  const y = { field: 'tpr', ...percent('true positive rate (% of buyers selected)', [0, 1]) };
  const colourOf = (series: Series) => SERIES_RANGE[SERIES_ORDER.indexOf(series)] as string;
  const colour = {
    field: 'series',
    type: 'nominal',
    ...colourScale([...drawn.map(label), CHANCE], [...drawn.map((curve) => colourOf(curve.series)), SERIES_COLOURS.reference]),
    // one entry a line: side by side, the labels with their AUC made the chart twice as wide
    legend: { title: null, columns: 1 },
  };
  const model = drawn.find((curve) => curve.series === 'model');
  const baselines = drawn.filter((curve) => curve.series !== 'model');
  const byDeciles = baselines.some((curve) => curve.resolution === 'deciles');
  const description =
    `ROC curve of the model on the evaluation window, area under the curve ${fixed(model?.auc, 3)}` +
    (baselines.length > 0
      ? `, with ${baselines.map((curve) => `${curve.series} (AUC ${fixed(curve.auc, 3)})`).join(' and ')} on the same window`
      : ', no baseline recorded') +
    `: ${values.length} points`;
  const subtitle =
    baselines.length === 0
      ? `model AUC ${fixed(model?.auc, 3)}, evaluation window; no baseline curve recorded`
      : `model and baselines on the same evaluation window${byDeciles ? '; baselines through their decile cut-offs (their full curves are not stored)' : ''}`;
  return {
    id: 'roc',
    title: 'ROC curve',
    description,
    points: values.length,
    spec: topLevel('ROC curve', subtitle, description, {
      width: WIDTH,
      height: HEIGHT,
      layer: [
        { data: { values: chance }, mark: { type: 'line', strokeDash: [4, 4], strokeWidth: 1 }, encoding: { x, y, color: colour } },
        {
          data: { values },
          mark: { type: 'line', strokeWidth: 2, point: byDeciles ? { size: 18 } : false },
          encoding: { x, y, color: colour, order: { field: 'fpr', type: 'quantitative' } },
        },
      ],
    }),
  };
}

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
  const colour = {
    field: 'series',
    type: 'nominal',
    ...colourScale([...SERIES_ORDER, 'random order'], [...SERIES_RANGE, SERIES_COLOURS.reference]),
  };
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
        {
          data: { values: [{ lift: 1 }] },
          mark: { type: 'rule', strokeDash: [4, 4], color: SERIES_COLOURS.reference },
          encoding: { y: { field: 'lift', type: 'quantitative' } },
        },
      ],
    }),
  };
}

export function reliabilityChart(bins: readonly CalibrationInput[], ece: number | null): Chart {
  const upper = Math.max(...bins.map((bin) => bin.upper), 0) || 1;
  const filled = bins.filter((bin) => bin.count > 0 && Number.isFinite(bin.meanPredicted) && Number.isFinite(bin.observedRate));
  const points = filled.map((bin) => ({ predicted: bin.meanPredicted, observed: bin.observedRate, count: bin.count }));
  const counts = bins.map((bin) => ({ lower: bin.lower, upper: bin.upper, count: bin.count }));
  const top = Math.max(upper, ...points.map((p) => p.observed as number));
  const description = `Reliability diagram: mean predicted probability against the observed buying rate in ${filled.length} non-empty bins, with the number of people per bin below`;
  const x = (title: string | null) => ({
    field: 'predicted',
    ...percent(title ?? '', [0, upper]),
    ...(title === null ? { axis: { format: '.1%', title: null, labels: false } } : {}),
  });
  return {
    id: 'reliability',
    title: 'Reliability (calibration)',
    description,
    points: points.length + counts.length,
    spec: topLevel(
      'Reliability (calibration) diagram',
      `expected calibration error (ECE) ${ece === null ? 'n/a' : `${(ece * 100).toFixed(2)} percentage points`}; on the dashed line predictions match reality`,
      description,
      {
        vconcat: [
          {
            width: WIDTH,
            height: 200,
            layer: [
              {
                data: {
                  values: [
                    { predicted: 0, observed: 0 },
                    { predicted: top, observed: top },
                  ],
                },
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
              x: {
                field: 'lower',
                type: 'quantitative',
                title: 'predicted probability (%)',
                axis: { format: '.1%' },
                scale: { domain: [0, upper] },
              },
              x2: { field: 'upper' },
              y: { field: 'count', type: 'quantitative', title: 'people per bin' },
            },
          },
        ],
      },
    ),
  };
}

export function scoreDistributionChart(bins: readonly HistogramInput[]): Chart {
  const buyers = bins.reduce((sum, bin) => sum + bin.buyers, 0);
  const nonBuyers = bins.reduce((sum, bin) => sum + bin.nonBuyers, 0);
  const values = bins.flatMap((bin) => [
    { lower: bin.lower, upper: bin.upper, share: buyers > 0 ? bin.buyers / buyers : 0, people: bin.buyers, group: 'buyers' },
    {
      lower: bin.lower,
      upper: bin.upper,
      share: nonBuyers > 0 ? bin.nonBuyers / nonBuyers : 0,
      people: bin.nonBuyers,
      group: 'non-buyers',
    },
  ]);
  const upper = Math.max(...bins.map((bin) => bin.upper), 0) || 1;
  const description = `Distribution of predicted probabilities for the ${buyers} buyers and ${nonBuyers} non-buyers of the evaluation window, in ${bins.length} bins`;
  return {
    id: 'score-distribution',
    title: 'Score distribution',
    description,
    points: values.length,
    spec: topLevel(
      'Score distribution: buyers vs non-buyers',
      'each group sums to 100%; the further apart, the better the ranking',
      description,
      {
        width: WIDTH,
        height: HEIGHT,
        data: { values },
        mark: { type: 'rect', opacity: 0.55, stroke: 'white', strokeWidth: 0.5 },
        encoding: {
          x: {
            field: 'lower',
            type: 'quantitative',
            title: 'predicted probability (%)',
            axis: { format: '.1%' },
            scale: { domain: [0, upper] },
          },
          x2: { field: 'upper' },
          y: { field: 'share', ...percent('share of the group in the bin (%)'), stack: null },
          color: {
            field: 'group',
            type: 'nominal',
            ...colourScale(['buyers', 'non-buyers'], [SERIES_COLOURS.buyers, SERIES_COLOURS.nonBuyers]),
          },
        },
      },
    ),
  };
}

export function importanceChart(importance: ReadonlyArray<{ group: string; aucDrop: number | null }>): Chart {
  const values = importance
    .filter((entry) => entry.aucDrop !== null && Number.isFinite(entry.aucDrop))
    .map((entry) => ({ group: entry.group, drop: entry.aucDrop }));
  const description = `Permutation importance of ${values.length} feature groups: how much the AUC drops when the group is shuffled`;
  return {
    id: 'importance',
    title: 'Feature importance',
    description,
    points: values.length,
    spec: topLevel(
      'Feature importance (permutation)',
      'one bar per feature group: the drop in AUC when it is shuffled on the evaluation window',
      description,
      {
        width: WIDTH,
        height: Math.max(120, values.length * 20),
        data: { values },
        mark: { type: 'bar', color: SERIES_COLOURS.model },
        encoding: {
          // no axis title: drawn beside long labels it overlapped them; the subtitle names the rows
          y: { field: 'group', type: 'nominal', sort: '-x', title: null, axis: { labelLimit: 420 } },
          x: { field: 'drop', type: 'quantitative', title: 'AUC drop (AUC points, 0–1 scale)', axis: { format: '.3f' } },
        },
      },
    ),
  };
}
