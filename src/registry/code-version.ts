import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

let cached: string | undefined;

/** The code a model was trained with: the git commit when there is one, else the package version. */
export function codeVersion(): string {
  if (cached) return cached;
  const packageJson = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  let commit = process.env.CIBLE_CODE_VERSION ?? '';
  if (!commit) {
    try {
      commit = execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], {
        cwd: new URL('../..', import.meta.url),
        stdio: ['ignore', 'pipe', 'ignore'],
      })
        .toString()
        .trim();
    } catch {
      commit = '';
    }
  }
  cached = commit ? `${packageJson.version}+${commit}` : packageJson.version;
  return cached;
}
