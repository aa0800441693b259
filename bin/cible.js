#!/usr/bin/env node
// Runs the TypeScript sources through tsx so a fresh clone needs no build step.
import { register } from 'tsx/esm/api';

// `cible ... | head` closes the pipe early: that is the reader's choice, not an error
process.stdout.on('error', (error) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

register();
const { main } = await import('../src/cli/main.ts');
await main(process.argv);
