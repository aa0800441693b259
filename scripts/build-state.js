// Whether dist/ holds a build of the current sources: read by bin/cible.js at each start, so kept cheap
// (a walk of the source folders' metadata, a few milliseconds).
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = new URL('../', import.meta.url);
export const COMPILED_MAIN = new URL('dist/src/cli/main.js', root);
export const SOURCE_MAIN = new URL('src/cli/main.ts', root);
/** what the build reads: a file changed, added, renamed or removed there makes the build out of date */
const BUILD_INPUTS = ['src', 'pipelines', 'models', 'migrations', 'tsconfig.json', 'tsconfig.build.json'];

function lastSourceChange() {
  let latest = 0;
  const visit = (path) => {
    const stat = statSync(path);
    latest = Math.max(latest, stat.mtimeMs);
    if (stat.isDirectory()) for (const entry of readdirSync(path)) visit(join(path, entry));
  };
  for (const input of BUILD_INPUTS) {
    const path = fileURLToPath(new URL(input, root));
    if (existsSync(path)) visit(path);
  }
  return latest;
}

/** 'current', 'outdated' (sources changed since), 'missing'; an installation without its sources has only the build. */
export function buildState() {
  if (!existsSync(COMPILED_MAIN)) return 'missing';
  if (!existsSync(SOURCE_MAIN)) return 'current';
  return statSync(COMPILED_MAIN).mtimeMs >= lastSourceChange() ? 'current' : 'outdated';
}
