#!/usr/bin/env node
// Runs the compiled JavaScript in dist/, built by `npm run build` (which `npm ci` runs through `prepare`).
// In a checkout whose sources changed since that build (or that was never built) it runs the TypeScript
// sources through tsx instead: what runs is always what the sources say, only slower to start.
import { existsSync, readdirSync, statSync } from 'node:fs';

// `cible ... | head` closes the pipe early: that is the reader's choice, not an error
process.stdout.on('error', (error) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

const root = new URL('../', import.meta.url);
const compiled = new URL('dist/src/cli/main.js', root);
const sources = new URL('src/cli/main.ts', root);

/** When anything the build reads last changed: files, and folders (a file added, renamed or removed). */
function lastSourceChange() {
  let latest = 0;
  const visit = (path) => {
    const stat = statSync(path);
    latest = Math.max(latest, stat.mtimeMs);
    if (stat.isDirectory()) for (const entry of readdirSync(path)) visit(`${path}/${entry}`);
  };
  for (const input of ['src', 'pipelines', 'models', 'migrations', 'tsconfig.json', 'tsconfig.build.json']) {
    const path = new URL(input, root).pathname;
    if (existsSync(path)) visit(path);
  }
  return latest;
}

function buildIsCurrent() {
  if (!existsSync(compiled)) return false;
  // installed without its sources: the build is all there is
  if (!existsSync(sources)) return true;
  return statSync(compiled).mtimeMs >= lastSourceChange();
}

let main;
if (buildIsCurrent()) {
  ({ main } = await import(compiled.href));
} else if (!existsSync(sources)) {
  console.error('cible: dist/ is missing: run `npm run build` in the cible folder');
  process.exit(1);
} else {
  // a note for a person at a terminal; scripts reading stderr get the command's own messages only
  if (process.stderr.isTTY) console.error('cible: dist/ does not hold a build of the current sources: running them through tsx (`npm run build` starts faster)');
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import(sources.href));
}
await main(process.argv);
