import type { Command } from 'commander';

/*
 * A command whose definition needs a heavy module (subcommands listed from the importers, defaults
 * shown from the pipeline's settings) completes it only when it is the command being run or asked
 * about, so `cible --help` and every other command start without loading that module.
 */

const pending = new WeakMap<Command, () => Promise<void>>();

/** `complete` adds the rest of a top-level command's definition; it runs at most once. */
export function deferDefinition(command: Command, complete: () => Promise<void>): void {
  let completion: Promise<void> | undefined;
  pending.set(command, () => (completion ??= complete()));
}

/** Completes the top-level command that `cible NAME …` or `cible help NAME` names, before parsing. */
export async function completeDefinitionFor(program: Command, argv: readonly string[]): Promise<void> {
  const [first, second] = argv.slice(2);
  const name = first === 'help' ? second : first;
  const command = program.commands.find((candidate) => candidate.name() === name || candidate.aliases().includes(name ?? ''));
  if (command) await pending.get(command)?.();
}
