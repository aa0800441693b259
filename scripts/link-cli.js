// Links node_modules/.bin/cible to bin/cible.js, so `npx cible` in this folder runs it at once.
// package.json declares no "bin" on purpose: for a package's own bin, npm 11's `npx` first installs the
// package into its npx cache (reading the whole dependency tree: about 1 s on each call); a command found
// in node_modules/.bin it runs directly.
import { chmodSync, lstatSync, mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const binDir = resolve(root, 'node_modules/.bin');
const link = resolve(binDir, 'cible');

mkdirSync(binDir, { recursive: true });
try {
  lstatSync(link);
  rmSync(link);
} catch {
  // no link yet
}
symlinkSync('../../bin/cible.js', link);
chmodSync(resolve(root, 'bin/cible.js'), 0o755);
