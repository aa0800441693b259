// `npm test`'s pretest step: the browser tests (test/ui) drive Debian's chromium, which `npm ci`
// does not install. When it is missing, install it if this run may (root, or CI=true with
// password-less sudo), never interactively; otherwise stop before any test runs, with the one
// command to run. The browser tests are never skipped: without chromium, `npm test` does not start.
// CIBLE_NO_CHROMIUM_INSTALL=1 forbids installing (to see what a user without rights would see).
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

const INSTALL_COMMAND = 'sudo apt-get install -y chromium';

/** The path of an executable `name` on PATH, or null. */
function onPath(name) {
  for (const folder of (process.env.PATH ?? '').split(delimiter).filter(Boolean)) {
    const candidate = join(folder, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this folder
    }
  }
  return null;
}

function stop(reason) {
  console.error(
    `npm test: the browser tests need Debian's chromium, which is not installed (${reason}).\n` +
      `Run this, then npm test again:\n\n    ${INSTALL_COMMAND}\n`,
  );
  process.exit(1);
}

/** apt-get as root, or through password-less sudo; returns whether it succeeded. */
function aptGet(asRoot, args) {
  const [command, commandArgs] = asRoot ? ['apt-get', args] : ['sudo', ['-n', 'apt-get', ...args]];
  const result = spawnSync(command, commandArgs, { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  return result.status === 0;
}

if (onPath('chromium')) process.exit(0);

const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const inCi = process.env.CI === 'true';
if (process.env.CIBLE_NO_CHROMIUM_INSTALL === '1') stop('installing is turned off by CIBLE_NO_CHROMIUM_INSTALL=1');
if (!asRoot && !inCi) stop('installing it needs root: this step installs it by itself only as root or when CI=true');
if (!onPath('apt-get')) stop('apt-get is not on PATH: this is not a Debian-like system, install chromium your own way');
if (!asRoot && !onPath('sudo')) stop('CI=true but not root, and sudo is not on PATH');

console.log("npm test: installing Debian's chromium for the browser tests (apt-get, non-interactive)");
const installed =
  aptGet(asRoot, ['install', '-y', '-qq', 'chromium']) ||
  (aptGet(asRoot, ['update', '-qq']) && aptGet(asRoot, ['install', '-y', '-qq', 'chromium']));
if (!installed || !onPath('chromium')) stop('apt-get could not install it');
