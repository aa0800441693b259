#!/usr/bin/env node
// Runs the compiled JavaScript in dist/, built by `npm run build` (which `npm ci` runs through `prepare`).
// In a checkout whose sources changed since that build (or that was never built) it runs the TypeScript
// sources through tsx instead: what runs is always what the sources say, only slower to start.
import { existsSync } from 'node:fs';
import { buildState, COMPILED_MAIN, SOURCE_MAIN } from '../scripts/build-state.js';

// `cible ... | head` closes the pipe early: that is the reader's choice, not an error
process.stdout.on('error', (error) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

const state = buildState();
let main;
if (state === 'current') {
  ({ main } = await import(COMPILED_MAIN.href));
} else if (!existsSync(SOURCE_MAIN)) {
  console.error('cible: dist/ is missing: run `npm run build` in the cible folder');
  process.exit(1);
} else {
  // a note for a person at a terminal; scripts reading stderr get the command's own messages only
  if (process.stderr.isTTY)
    console.error(
      `cible: dist/ is ${state === 'missing' ? 'missing' : 'older than the sources'}: running the sources through tsx (\`npm run build\` starts faster)`,
    );
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import(SOURCE_MAIN.href));
}
await main(process.argv);
