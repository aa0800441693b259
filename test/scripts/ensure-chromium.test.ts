import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

/*
 * npm test's pretest step, run with a PATH of our own: an empty folder stands for a machine
 * without chromium (chromium itself is left installed), a folder with a stand-in for one with it.
 */

const SCRIPT = resolve(import.meta.dirname, '../../scripts/ensure-chromium.js');

function run(path: string, env: Record<string, string> = {}) {
  const result = spawnSync(process.execPath, [SCRIPT], { env: { PATH: path, ...env }, encoding: 'utf8', timeout: 60_000 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

function folder(): string {
  return mkdtempSync(join(tmpdir(), 'ensure-chromium-'));
}

const EXACT_COMMAND = /\n {4}sudo apt-get install -y chromium\n/;

describe('ensure-chromium (pretest)', () => {
  it('stops before the tests, with the one command to run, when chromium is missing and installing is forbidden', () => {
    const result = run(folder(), { CIBLE_NO_CHROMIUM_INSTALL: '1', CI: 'true' });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/the browser tests need Debian's chromium, which is not installed/);
    expect(result.stderr).toMatch(EXACT_COMMAND);
    expect(result.stdout).not.toMatch(/installing/);
  });

  it('stops with the same command when it may install but apt-get is not there', () => {
    const result = run(folder(), { CI: 'true' });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/apt-get is not on PATH|not root, and sudo is not on PATH/);
    expect(result.stderr).toMatch(EXACT_COMMAND);
  });

  it('lets the tests run when chromium is on PATH', () => {
    const bin = join(folder(), 'bin');
    mkdirSync(bin);
    writeFileSync(join(bin, 'chromium'), '#!/bin/sh\nexit 0\n');
    chmodSync(join(bin, 'chromium'), 0o755);
    const result = run(bin, { CIBLE_NO_CHROMIUM_INSTALL: '1' });
    expect(result.code).toBe(0);
    expect(result.stderr).toBe('');
  });
});
