/*
 * What every chart of the review pages shares: a chart is a plain function's result, a Vega-Lite
 * spec with a title, axis titles that carry their unit, and a description read out as the
 * chart's label. Every chart shows aggregates (curves, bins, deciles, counts): never a row about
 * a person. The specs are in evaluation.specs.ts and monitoring.specs.ts, the drawing in renderer.ts.
 */

export type Spec = Record<string, unknown>;

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
  axis: {
    labelFontSize: 11,
    titleFontSize: 12,
    titleFontWeight: 'normal',
    titleColor: '#333',
    labelColor: '#444',
    gridColor: '#eee',
    domainColor: '#888',
    tickColor: '#888',
  },
  title: { fontSize: 14, fontWeight: 600, anchor: 'start', color: '#222', subtitleFontSize: 11, subtitleColor: '#555', offset: 10 },
  legend: { orient: 'bottom', labelFontSize: 11, titleFontSize: 11, titleFontWeight: 'normal', symbolSize: 80, labelLimit: 280 },
  // the SVG carries one label for the whole chart (set on the <svg>): no ARIA per mark
  aria: false,
};

export const WIDTH = 340;
export const HEIGHT = 240;

export function topLevel(title: string, subtitle: string | null, description: string, body: Spec): Spec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: subtitle ? { text: title, subtitle } : { text: title },
    description,
    config: CONFIG,
    ...body,
  };
}

export const percent = (title: string, domain?: [number, number]): Spec => ({
  type: 'quantitative',
  title,
  axis: { format: '.0%' },
  ...(domain ? { scale: { domain } } : {}),
});

export function colourScale(domain: string[], range: string[]): Spec {
  return { scale: { domain, range }, legend: { title: null } };
}

export const fixed = (value: number | null | undefined, digits: number) =>
  value === null || value === undefined || !Number.isFinite(value) ? 'n/a' : value.toFixed(digits);

export type Series = 'model' | 'RFM' | 'BG/NBD';
export const SERIES_ORDER: Series[] = ['model', 'RFM', 'BG/NBD'];
export const SERIES_RANGE: string[] = [SERIES_COLOURS.model, SERIES_COLOURS.rfm, SERIES_COLOURS.bgnbd];
