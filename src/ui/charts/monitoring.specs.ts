import { type Chart, colourScale, SERIES_COLOURS, SERIES_ORDER, SERIES_RANGE, type Spec, topLevel, WIDTH } from './chart.ts';

/*
 * The charts that follow a model and the pipeline over time: AUC across versions, input drift,
 * the consent funnel, run and stage durations.
 */

export interface HistoryInput {
  version: number;
  status: string;
  auc: number | null;
  rfmAuc: number | null;
  bgnbdAuc: number | null;
}

/** The AUC axis's range: padded, on multiples of 0.05, at least 0.05 wide, within [0, 1]. */
function aucDomain(values: readonly number[]): [number, number] {
  const low = Math.max(0, Math.floor((Math.min(...values) - 0.01) * 20) / 20);
  const high = Math.min(1, Math.ceil((Math.max(...values) + 0.01) * 20) / 20);
  return high - low >= 0.05 ? [low, high] : [Math.max(0, high - 0.05), Math.max(0.05, high)];
}

export function historyChart(versions: readonly HistoryInput[]): Chart {
  const values: Array<{ version: string; auc: number; series: string; status: string }> = [];
  const ordered = [...versions].sort((a, b) => a.version - b.version);
  for (const v of ordered) {
    const label = `v${v.version}`;
    if (v.auc !== null && Number.isFinite(v.auc)) values.push({ version: label, auc: v.auc, series: 'model', status: v.status });
    if (v.rfmAuc !== null && Number.isFinite(v.rfmAuc)) values.push({ version: label, auc: v.rfmAuc, series: 'RFM', status: v.status });
    if (v.bgnbdAuc !== null && Number.isFinite(v.bgnbdAuc))
      values.push({ version: label, auc: v.bgnbdAuc, series: 'BG/NBD', status: v.status });
  }
  const description = `AUC of each of the ${ordered.length} versions on its own evaluation window, with both baselines on the same windows`;
  return {
    id: 'history',
    title: 'Metric history',
    description,
    points: values.length,
    spec: topLevel(
      'AUC across versions',
      'each version judged on its own evaluation window; a falling model line means degrading',
      description,
      {
        width: WIDTH,
        height: 200,
        data: { values },
        mark: { type: 'line', point: { size: 36 }, strokeWidth: 2 },
        encoding: {
          x: {
            field: 'version',
            type: 'ordinal',
            sort: ordered.map((v) => `v${v.version}`),
            title: 'model version',
            axis: { labelAngle: 0, labelOverlap: 'greedy' },
          },
          // ticks at least 0.01 apart on a domain of whole hundredths: two ticks never print the same
          // two-decimal label (a narrow automatic domain put 0.712 and 0.714 both as "0.71")
          y: {
            field: 'auc',
            type: 'quantitative',
            title: 'ROC AUC (0.5 = chance, 1 = perfect)',
            scale: { domain: values.length > 0 ? aucDomain(values.map((v) => v.auc)) : [0.5, 1] },
            axis: { format: '.2f', tickMinStep: 0.01 },
          },
          color: { field: 'series', type: 'nominal', ...colourScale(SERIES_ORDER, SERIES_RANGE) },
        },
      },
    ),
  };
}

export interface DriftInput {
  feature: string;
  psi: number;
  /** a feature that grows with time by construction: its PSI is drawn, never flagged */
  exempt: boolean;
}

export function driftChart(features: readonly DriftInput[], threshold: number, shown = 20): Chart {
  const top = [...features].sort((a, b) => b.psi - a.psi).slice(0, shown);
  const below = `at most ${threshold}`;
  const above = `above ${threshold} (flagged)`;
  const exempt = 'grows with time (not flagged)';
  const flagOf = (entry: DriftInput) => (entry.exempt ? exempt : entry.psi > threshold ? above : below);
  const values = top.map((entry) => ({ feature: entry.feature, psi: entry.psi, flag: flagOf(entry) }));
  const flagged = values.filter((v) => v.flag === above).length;
  const description = `Population stability index of the ${values.length} most shifted features between the training sample and the scored population; ${flagged} flagged above ${threshold}`;
  return {
    id: 'drift',
    title: 'Input drift',
    description,
    points: values.length,
    spec: topLevel(
      'Input drift: population stability index (PSI)',
      `one bar per feature: training sample vs scored population, ${values.length} most shifted of ${features.length}; dashed line at ${threshold}`,
      description,
      {
        width: WIDTH,
        height: Math.max(120, values.length * 16),
        layer: [
          {
            data: { values },
            mark: { type: 'bar' },
            encoding: {
              // no axis title: drawn beside long feature names it overlapped them; the subtitle names the rows
              y: { field: 'feature', type: 'nominal', sort: '-x', title: null, axis: { labelLimit: 420 } },
              x: { field: 'psi', type: 'quantitative', title: 'PSI (unitless; > 0.25 major shift)', axis: { format: '.2~f' } },
              color: {
                field: 'flag',
                type: 'nominal',
                ...colourScale([below, above, exempt], [SERIES_COLOURS.model, SERIES_COLOURS.flagged, SERIES_COLOURS.reference]),
              },
            },
          },
          {
            data: { values: [{ psi: threshold }] },
            mark: { type: 'rule', strokeDash: [4, 4], color: SERIES_COLOURS.flagged },
            encoding: { x: { field: 'psi', type: 'quantitative' } },
          },
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
        x: {
          field: 'people',
          type: 'quantitative',
          title: 'people who may be contacted (after each rule, cumulative)',
          axis: { format: ',d' },
        },
        color: {
          field: 'step',
          type: 'nominal',
          sort: stepNames,
          scale: { scheme: 'blues', reverse: true },
          legend: { title: null, orient: 'bottom', columns: 2 },
        },
      },
    });
  }
  return {
    id: 'funnel',
    title: 'Consent funnel',
    description,
    points: overall.length + perChannel.length,
    spec: topLevel('Consent funnel of the population', 'counts of people; each rule keeps fewer', description, {
      vconcat: panels,
      resolve: { scale: { x: 'independent', color: 'independent' } },
    }),
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
          ...colourScale(
            ['succeeded', 'failed', 'running', 'queued', 'cancelled'],
            ['#4f9a4c', '#c0392b', '#1f5fa8', '#8c8c8c', '#d0842c'],
          ),
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
