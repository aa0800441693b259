/*
 * What a chart's SVG (as Vega draws it) shows: its axes' tick labels and titles, its legend's
 * labels, its line marks. Read from the markup, as a reviewer would read the picture.
 */

const texts = (markup: string) => [...markup.matchAll(/<text\b[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]!);

/** The tick labels of each axis, one list per axis, in the order drawn. */
export function axisTickLabels(svg: string): string[][] {
  return [...svg.matchAll(/<g class="mark-text role-axis-label"[^>]*>([\s\S]*?)<\/g>/g)].map((m) => texts(m[1]!));
}

/** The axis titles drawn. */
export function axisTitles(svg: string): string[] {
  return [...svg.matchAll(/<g class="mark-text role-axis-title"[^>]*>([\s\S]*?)<\/g>/g)].flatMap((m) => texts(m[1]!));
}

/** The legend's labels. */
export function legendLabels(svg: string): string[] {
  return [...svg.matchAll(/<g class="mark-text role-legend-label"[^>]*>([\s\S]*?)<\/g>/g)].flatMap((m) => texts(m[1]!));
}

/** How many line paths the chart draws (one per series and layer). */
export function linePaths(svg: string): number {
  let paths = 0;
  for (const group of svg.matchAll(/<g class="mark-line role-mark[^"]*"[^>]*>([\s\S]*?)<\/g>/g))
    paths += (group[1]!.match(/<path\b/g) ?? []).length;
  return paths;
}
