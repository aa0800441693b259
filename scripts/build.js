// Compiles src/, pipelines/, models/ and migrations/ to plain JavaScript in dist/ (or the folder given),
// the code `bin/cible.js` runs. Type errors are `npm run typecheck`'s job: the build only transpiles.
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const outDir = resolve(root, process.argv[2] ?? 'dist');
let tsc;
try {
  tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
} catch {
  // installed without the development dependencies (npm ci --omit=dev): nothing to build with
  console.warn('cible: typescript is not installed, so dist/ is not built: bin/cible.js runs the sources through tsx (slower to start)');
  process.exit(0);
}

rmSync(outDir, { recursive: true, force: true });
execFileSync(process.execPath, [tsc, '--project', join(root, 'tsconfig.build.json'), '--outDir', outDir], { stdio: 'inherit' });
// the compiled code reads the version from ../../package.json, as the sources do
const { name, version, type } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
writeFileSync(join(outDir, 'package.json'), `${JSON.stringify({ name, version, type, private: true }, null, 2)}\n`);
