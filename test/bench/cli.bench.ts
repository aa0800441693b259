/**
 * npm run bench:cli — how long the `cible` command takes to start and to answer, from the build
 * that `npm ci` makes (rebuilt first), each figure beside an anchor measured in the same run:
 *
 *   1. `cible --help` beside `node -e ''` (node's own start-up), and `npx cible --help` beside
 *      `npx --version` (npm's own start-up) and `npx biome --version` (npx running another local
 *      bin of node_modules/.bin, a native program that answers at once: npx's own floor);
 *   2. on a demo base in a temporary CIBLE_DATA_DIR (embedded database):
 *      `cible targets SKU --channel email --top 10` (and `--preview` when the command has it)
 *      beside a node process that opens the same database with PGlite and runs the bare SQL of
 *      the list: the live scores' top 10 by rank, without the consent checks;
 *   3. the same commands beside a running `cible serve`, which owns the embedded database (the
 *      commands connect to it instead of opening the files), when the build has that owner.
 *
 * Medians of BENCH_RUNS runs (default 7). The lists are real (recorded with their manifests); the
 * contact-pressure cap is lifted so that every run asks for the same people.
 *
 *   BENCH_CONTACTS  demo base size (default 20000, the demo's: small bases may have no champion model)
 *   BENCH_DATA_DIR  a CIBLE_DATA_DIR that already holds a demo base, to time it instead of building one
 *                   (its lists are recorded there)
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildState } from '../../scripts/build-state.js';
import { freePort } from '../helpers/cible-serve.ts';

const runs = Number(process.env.BENCH_RUNS ?? 7);
const contacts = Number(process.env.BENCH_CONTACTS ?? 20_000);
const givenDataDir = process.env.BENCH_DATA_DIR;
const dataDir = givenDataDir ?? mkdtempSync(join(tmpdir(), 'cible-bench-cli-'));
const env = { ...process.env, DATABASE_URL: '', CIBLE_DATA_DIR: dataDir, CIBLE_PRESSURE_MAX_LISTS: '1000000' };

/** Runs the command once, failing loudly; its stdout. */
function once(command: string, args: string[]): string {
  const result = spawnSync(command, args, { env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} exited with ${result.status}: ${result.stderr}`);
  return result.stdout;
}

/** Median wall time in seconds of `runs` runs, after one unmeasured run (disk cache). */
function median(command: string, args: string[]): number {
  once(command, args);
  const seconds: number[] = [];
  for (let run = 0; run < runs; run++) {
    const began = performance.now();
    once(command, args);
    seconds.push((performance.now() - began) / 1000);
  }
  seconds.sort((a, b) => a - b);
  return seconds[Math.floor(seconds.length / 2)]!;
}

function line(label: string, seconds: number, anchorLabel: string, anchor: number, target?: number): void {
  const goal = target === undefined ? '' : `  (target ≤ ${target} s: ${seconds <= target ? 'met' : 'NOT met'})`;
  console.log(
    `${label.padEnd(58)} ${seconds.toFixed(3)} s   ${anchorLabel.padEnd(34)} ${anchor.toFixed(3)} s   ratio ${(seconds / anchor).toFixed(1)}×${goal}`,
  );
}

const BARE_LIST_SQL = `
  SELECT s.contact_id FROM scores s
  JOIN score_sets ss ON ss.id = s.score_set_id AND ss.status = 'live'
  JOIN models m ON m.id = ss.model_id AND m.target_kind = 'product' AND m.target_key = $1
  ORDER BY s.rank LIMIT 10`;

function bareListScript(sku: string): string {
  return `import { PGlite } from '@electric-sql/pglite';
const db = await PGlite.create(${JSON.stringify(join(dataDir, 'pgdata'))});
const { rows } = await db.query(${JSON.stringify(BARE_LIST_SQL)}, [${JSON.stringify(sku)}]);
if (rows.length !== 10) throw new Error('expected 10 rows, got ' + rows.length);
await db.close();`;
}

/** Starts `cible serve` on the demo base; resolves once it listens, with a function that stops it. */
async function startServer(): Promise<() => Promise<void>> {
  const port = await freePort();
  const server = spawn('node', ['bin/cible.js', 'serve'], { env: { ...env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`cible serve did not start: ${output}`)), 180_000);
    server.stdout.on('data', (chunk) => {
      output += chunk;
      if (output.includes('listening on')) {
        clearTimeout(timer);
        resolve();
      }
    });
    server.stderr.on('data', (chunk) => (output += chunk));
    server.on('exit', (code) => reject(new Error(`cible serve exited with ${code}: ${output}`)));
  });
  return async () => {
    const exited = new Promise((resolve) => server.once('exit', resolve));
    server.kill('SIGTERM');
    await exited;
  };
}

async function main(): Promise<void> {
  const began = performance.now();
  once('npm', ['run', '--silent', 'build']);
  console.log(
    `built dist/ in ${((performance.now() - began) / 1000).toFixed(1)} s; ${runs} runs per figure; load average ${loadavg()[0]!.toFixed(1)} on this machine`,
  );
  const cible = (...args: string[]) => ['bin/cible.js', ...args];

  const node = median('node', ['-e', '']);
  line('cible --help', median('node', cible('--help')), "node -e ''", node, 0.3);
  const npxCible = median('npx', ['cible', '--help']);
  line('npx cible --help', npxCible, 'npx --version', median('npx', ['--version']), 0.3);
  line('npx cible --help', npxCible, 'npx biome --version (a local bin)', median('npx', ['biome', '--version']));

  const demoBegan = performance.now();
  // on a base already loaded, demo loads nothing, runs no pipeline, and prints the same request
  const demo = once('node', cible('demo', '--no-serve', '--contacts', String(contacts)));
  const sku = /npx cible targets (\S+) --channel email/.exec(demo)?.[1];
  console.log(
    givenDataDir
      ? `demo base in ${givenDataDir}`
      : `demo base of ${contacts} contacts built in ${((performance.now() - demoBegan) / 1000).toFixed(0)} s`,
  );
  if (!sku) {
    console.log('no product has a champion model on this demo base: no list to time (try a larger BENCH_CONTACTS)');
    return;
  }
  const bare = median('node', ['--input-type=module', '-e', bareListScript(sku)]);
  const list = ['targets', sku, '--channel', 'email', '--top', '10'];
  const preview = once('node', cible('targets', '--help')).includes('--preview');
  const timeLists = (where: string) => {
    line(`cible ${list.join(' ')}${where}`, median('node', cible(...list)), 'PGlite open + bare list SQL', bare, 1);
    if (preview)
      line(
        `cible ${list.join(' ')} --preview${where}`,
        median('node', cible(...list, '--preview')),
        'PGlite open + bare list SQL',
        bare,
        1,
      );
  };
  timeLists('');
  // without an owner, a second process would open the same files: only with a build that has one
  if (existsSync('dist/src/db/embedded-owner.js')) {
    const stop = await startServer();
    try {
      timeLists(', beside cible serve');
    } finally {
      await stop();
    }
  } else {
    console.log('beside a running cible serve: not measured (this build has no owner for the embedded database)');
  }
  if (buildState() !== 'current')
    console.log('warning: the sources changed during the run: some figures may be of the sources through tsx, not of the build');
}

try {
  await main();
} finally {
  if (!givenDataDir) rmSync(dataDir, { recursive: true, force: true });
}
