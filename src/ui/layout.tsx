import { raw } from 'hono/html';
import type { Child, FC } from 'hono/jsx';
import type { MissingChart as MissingChartEntry } from './chart-sources.ts';
import type { Chart } from './charts/chart.ts';

/** Who is signed in, as the header shows it. */
export interface Viewer {
  name: string;
  role: string;
}

const STYLESHEET = `
:root { --ink: #1d2430; --muted: #5b6472; --line: #dde2e8; --soft: #f5f7fa; --accent: #1f5fa8; --bad: #b0322a; --warn: #9a6a00; --good: #2e7d32; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: var(--ink); background: #fff; }
header.top { display: flex; align-items: center; gap: 1.5rem; padding: .6rem 1.5rem; border-bottom: 1px solid var(--line); background: var(--soft); }
header.top .brand { font-weight: 700; color: var(--ink); text-decoration: none; }
header.top nav a { margin-right: 1rem; color: var(--accent); text-decoration: none; }
header.top nav a[aria-current="page"] { font-weight: 600; color: var(--ink); }
header.top .who { margin-left: auto; color: var(--muted); display: flex; gap: .75rem; align-items: center; }
main { padding: 1.25rem 1.5rem 3rem; max-width: 1400px; }
h1 { font-size: 1.45rem; margin: 0 0 .25rem; }
h2 { font-size: 1.1rem; margin: 2rem 0 .5rem; padding-bottom: .25rem; border-bottom: 1px solid var(--line); }
p.lead { color: var(--muted); margin: 0 0 1rem; }
a { color: var(--accent); }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1rem; font-variant-numeric: tabular-nums; }
th, td { padding: .35rem .55rem; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
th { background: var(--soft); font-weight: 600; font-size: .85rem; }
th a { color: var(--ink); text-decoration: none; }
th a:hover { text-decoration: underline; }
td.num { text-align: right; white-space: nowrap; }
th.num { text-align: right; }
table#models { font-size: 12.5px; }
/* the feature profile's sections line their columns up */
table.features { table-layout: fixed; }
table.features th:nth-child(1) { width: 17rem; overflow-wrap: anywhere; }
table.features th:nth-child(9) { width: 16rem; }
details.feature-group > summary { cursor: pointer; margin-top: 1rem; }
table#models td.when { min-width: 8.5rem; }
table#models td:first-child { min-width: 8rem; }
table#models td.status { min-width: 15rem; }
.scroll { overflow-x: auto; }
td.reason { color: var(--muted); font-size: .85rem; min-width: 16rem; max-width: 34rem; }
tr.problem td:first-child { box-shadow: inset 3px 0 0 var(--bad); }
.badge { display: inline-block; padding: .05rem .45rem; border-radius: .7rem; font-size: .8rem; font-weight: 600; white-space: nowrap; }
.badge.promoted, .badge.succeeded, .badge.champion { background: #e3f1e4; color: var(--good); }
.badge.kept-old, .badge.candidate, .badge.running, .badge.queued { background: #fdf2d8; color: var(--warn); }
.badge.rejected, .badge.not-enough-data, .badge.failed, .badge.not-eligible, .badge.cancelled { background: #f8e1df; color: var(--bad); }
.badge.retired { background: #eceff3; color: var(--muted); }
ul.problems { margin: 0; padding-left: 1rem; color: var(--bad); font-size: .85rem; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; margin: .5rem 0 1rem; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr)); gap: 1rem; }
figure.chart { margin: 0; padding: .5rem; border: 1px solid var(--line); border-radius: .4rem; background: #fff; }
figure.chart img { max-width: 100%; height: auto; display: block; }
figure.chart figcaption { color: var(--muted); font-size: .8rem; margin-top: .25rem; }
figure.chart.missing { display: flex; flex-direction: column; justify-content: center; min-height: 8rem; background: var(--soft); }
.notice { padding: .75rem 1rem; border-left: 4px solid var(--accent); background: var(--soft); margin: 1rem 0; }
.notice.error { border-color: var(--bad); }
.notice.warn { border-color: var(--warn); }
form.inline { display: inline; }
form.card { max-width: 28rem; padding: 1rem 1.25rem; border: 1px solid var(--line); border-radius: .4rem; background: var(--soft); }
label { display: block; font-weight: 600; margin-bottom: .25rem; }
input[type=text], input[type=password] { width: 100%; padding: .45rem .5rem; border: 1px solid #b9c1cc; border-radius: .3rem; font: inherit; }
button { padding: .4rem .9rem; border: 1px solid var(--accent); background: var(--accent); color: #fff; border-radius: .3rem; font: inherit; cursor: pointer; }
button.link { background: none; border: none; color: var(--accent); padding: 0; text-decoration: underline; }
.hint { color: var(--muted); font-size: .85rem; }
.muted { color: var(--muted); }
footer { color: var(--muted); font-size: .8rem; padding: 1rem 1.5rem; border-top: 1px solid var(--line); }
`;

const NAV = [
  { href: '/ui/models', label: 'Models', key: 'models' },
  { href: '/ui/runs', label: 'Runs', key: 'runs' },
  { href: '/ui/people', label: 'Person lookup', key: 'people' },
] as const;

export const Layout: FC<{ title: string; viewer: Viewer | null; active?: string; children?: Child }> = ({
  title,
  viewer,
  active,
  children,
}) => (
  <>
    {raw('<!doctype html>')}
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="robots" content="noindex" />
        <title>{`${title} · cible model review`}</title>
        <style>{raw(STYLESHEET)}</style>
      </head>
      <body>
        <header class="top">
          <a class="brand" href="/ui/models">
            cible · model review
          </a>
          {viewer ? (
            <nav aria-label="sections">
              {NAV.map((item) => (
                <a href={item.href} aria-current={active === item.key ? 'page' : undefined}>
                  {item.label}
                </a>
              ))}
            </nav>
          ) : null}
          {viewer ? (
            <div class="who">
              <span>
                key “{viewer.name}” ({viewer.role.replace('_', ' ')})
              </span>
              <form class="inline" method="post" action="/ui/logout">
                <button class="link" type="submit">
                  Sign out
                </button>
              </form>
            </div>
          ) : null}
        </header>
        <main>{children}</main>
        <footer>
          Aggregates of consented data only. No contact details are shown on these pages; the person view shows one person at a time.
        </footer>
      </body>
    </html>
  </>
);

/** A chart on a page: its own address (an SVG drawn on the server), or why it is not there. */
export type ChartSlot = { chart: Chart; src: string; width: number; height: number } | MissingChartEntry;

/** A chart as an image of its own (no script, allowed by img-src 'self'): its description as alternative text, its title as caption. */
export const ChartFigure: FC<{ chart: Chart; src: string; width: number; height: number }> = ({ chart, src, width, height }) => (
  <figure class="chart" id={`chart-${chart.id}`} data-chart={chart.id} data-points={String(chart.points)}>
    <img src={src} alt={chart.description} width={width} height={height} />
    <figcaption>{chart.title}</figcaption>
  </figure>
);

/** Where a chart would be, when its data was not recorded: says why instead. */
export const MissingChart: FC<{ id: string; title: string; reason: string }> = ({ id, title, reason }) => (
  <figure class="chart missing" id={`chart-${id}`} data-chart={id} data-missing="true">
    <strong>{title}</strong>
    <p class="muted">{reason}</p>
  </figure>
);

/** A chart, or the reason in its place. */
export const ChartOrMissing: FC<{ slot: ChartSlot }> = ({ slot }) =>
  'missing' in slot ? (
    <MissingChart {...slot.missing} />
  ) : (
    <ChartFigure chart={slot.chart} src={slot.src} width={slot.width} height={slot.height} />
  );

export function badgeClass(status: string): string {
  return `badge ${status.replace(/[^a-z]+/gi, '-').toLowerCase()}`;
}

export const Badge: FC<{ status: string }> = ({ status }) => <span class={badgeClass(status)}>{status}</span>;
