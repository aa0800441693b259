import { endTime, startTime } from 'hono/timing';
import { type ModelTarget, targetLabel } from '../../registry/model-catalog.repository.ts';
import { isModelChart, loadModelChart, MODEL_CHART_NAMES, MODEL_CHARTS } from '../chart-sources.ts';
import type { Chart } from '../charts/chart.ts';
import { modelChartHead } from '../model.repository.ts';
import { modelPath, targetFromPath } from '../paths.ts';
import { chartName, chartRefusal, chartResponse, type UiApp, type UiRouteDeps } from '../ui-env.tsx';

/** The address of a model chart's image. */
export const chartSrc = (target: ModelTarget) => (chart: Chart, version: string) =>
  modelPath(target, `/charts/${chart.id}.svg?v=${version}`);

/** GET /ui/models/:target/charts/:name.svg: one chart of a model, reading only its own source. */
export function registerModelCharts(ui: UiApp, { reviewers, charts }: UiRouteDeps): void {
  ui.get('/models/:target/charts/:file', reviewers, async (c) => {
    const target = targetFromPath(c.req.param('target'));
    if (!target) return chartRefusal(c, 400, 'Not a model name.');
    const name = chartName(c.req.param('file'));
    if (name === null || !isModelChart(name))
      return chartRefusal(c, 404, `No such chart: a model has the charts ${MODEL_CHART_NAMES.map((n) => `${n}.svg`).join(', ')}.`);
    startTime(c, 'db', 'database');
    const head = await modelChartHead(c.var.db, target);
    if (!head) {
      endTime(c, 'db');
      return chartRefusal(c, 404, `No model is named “${targetLabel(target)}”.`);
    }
    if (!head.champion && MODEL_CHARTS[name].source !== 'history') {
      endTime(c, 'db');
      return chartRefusal(c, 404, `${targetLabel(target)} has no live model: only its version history is drawn.`);
    }
    const entry = await loadModelChart(c.var.db, head, name);
    endTime(c, 'db');
    return chartResponse(c, charts, entry);
  });
}
