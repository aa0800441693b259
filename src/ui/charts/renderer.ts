import { createHash } from 'node:crypto';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { type Chart, HEIGHT, type Spec, WIDTH } from './chart.ts';

/*
 * Draws chart specs to SVG on the server with Vega (no script reaches the browser), and tells a
 * page each chart's size before it is drawn.
 */

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
  const metrics = (
    vega as unknown as { textMetrics?: { width: (item: { fontSize?: number; limit?: number; text?: unknown }, text?: unknown) => number } }
  ).textMetrics;
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
    return svg
      .replace(/^<svg /, `<svg role="img" aria-label="${escapeXml(chart.description)}" `)
      .replace(/^(<svg[^>]*>)/, `$1<title>${escapeXml(chart.title)}</title>`);
  } finally {
    view.finalize();
  }
}

/** The width and height of the plotting areas a spec declares (concatenated views stacked). */
function declaredSize(spec: Spec): ChartSize {
  const own = (view: Spec): ChartSize => ({
    width: typeof view.width === 'number' ? view.width : WIDTH,
    height: typeof view.height === 'number' ? view.height : HEIGHT,
  });
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
      return {
        width: Math.max(1, Math.round(declared.width + margin.width)),
        height: Math.max(1, Math.round(declared.height + margin.height)),
      };
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
