import { userInfo } from 'node:os';
import type { AppContext, ContextOptions } from '../context.ts';

/** An error caused by what the user gave (bad file, unknown option value): printed without a stack. */
export class UserError extends Error {}

/** Opens the context, runs the command, and always closes what was opened. */
export async function withContext<T>(options: ContextOptions, run: (context: AppContext) => Promise<T>): Promise<T> {
  // loaded here rather than at start-up, so `cible --help` and argument errors never load the database code
  const [{ loadConfig }, { createContext }] = await Promise.all([import('../config.ts'), import('../context.ts')]);
  const context = await createContext(loadConfig(), { defaultLogLevel: 'warn', ...options });
  try {
    return await run(context);
  } finally {
    await context.stop();
  }
}

export function integer(option: string) {
  return (value: string): number => {
    if (!/^-?\d+$/.test(value)) throw new UserError(`${option} expects a whole number, got "${value}"`);
    return Number(value);
  };
}

export function positiveInteger(option: string) {
  return (value: string): number => {
    const parsed = integer(option)(value);
    if (parsed < 1 || parsed > 10_000_000) throw new UserError(`${option} expects a number from 1 to 10,000,000, got ${value}`);
    return parsed;
  };
}

/** Who acts, for the audit log: the operating-system user running the command. */
export function cliActor(): string {
  try {
    return `cli:${userInfo().username}`;
  } catch {
    return 'cli';
  }
}
