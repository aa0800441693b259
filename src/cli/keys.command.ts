import type { Command } from 'commander';
import { appendAuditLog } from '../audit/audit-log.repository.ts';
import { createApiKey, listApiKeys, ROLES, revokeApiKey } from '../auth/api-key.repository.ts';
import type { Role } from '../auth/api-key.table.ts';
import { cliActor, UserError, withContext } from './cli-context.ts';

export const KEY_SHOWN_ONCE = 'this key is shown once and cannot be shown again: store it now (only its hash is kept)';

export function parseRole(value: string): Role {
  const role = value.trim();
  if (!(ROLES as readonly string[]).includes(role)) throw new UserError(`--role must be one of ${ROLES.join(', ')}; got "${value}"`);
  return role as Role;
}

function parseName(value: string): string {
  const name = value.trim();
  if (name.length === 0 || name.length > 100) throw new UserError('--name expects what the key is for, 1 to 100 characters');
  return name;
}

function parseKeyId(value: string): number {
  if (!/^[1-9]\d{0,14}$/.test(value.trim()))
    throw new UserError(`the key id is a positive whole number (see cible keys list), got "${value}"`);
  return Number(value.trim());
}

const minute = (date: Date | null) => (date ? date.toISOString().slice(0, 16).replace('T', ' ') : '-');

export function registerKeyCommands(program: Command): void {
  const keys = program.command('keys').description('API keys for the HTTP API: create (the key is shown once), list, revoke');

  keys
    .command('create')
    .description('create an API key with one role; the key is printed once and never again')
    .requiredOption('--role <role>', `the key's role: ${ROLES.join(', ')}`)
    .requiredOption('--name <name>', 'what the key is for (shown in listings)')
    .option('--json', 'print JSON')
    .action((flags: { role: string; name: string; json?: boolean }) => {
      const role = parseRole(flags.role);
      const name = parseName(flags.name);
      return withContext({ migrate: true }, async (context) => {
        const created = await context.database.db.transaction().execute(async (trx) => {
          const key = await createApiKey(trx, name, role);
          await appendAuditLog(trx, {
            at: context.clock.now(),
            actor: cliActor(),
            action: 'api_key.create',
            subjectType: 'api_key',
            subjectId: String(key.id),
            details: { role: key.role, prefix: key.prefix },
          });
          return key;
        });
        if (flags.json) {
          console.log(JSON.stringify({ ...created, warning: KEY_SHOWN_ONCE }, null, 2));
          return;
        }
        console.log(`API key ${created.id} "${created.name}" created with the role ${created.role}:`);
        console.log(created.key);
        console.log(`warning: ${KEY_SHOWN_ONCE}`);
      });
    });

  keys
    .command('list')
    .description('every API key with its role and last use, revoked ones included; never the secrets')
    .option('--json', 'print JSON')
    .action((flags: { json?: boolean }) =>
      withContext({ migrate: true }, async (context) => {
        const listing = await listApiKeys(context.database.db);
        if (flags.json) {
          console.log(JSON.stringify(listing, null, 2));
          return;
        }
        if (listing.length === 0) {
          console.log('no API keys yet: cible keys create --role ROLE --name NAME');
          return;
        }
        console.log(
          `${'id'.padStart(4)}  ${'name'.padEnd(24)} ${'role'.padEnd(15)} ${'key'.padEnd(21)} ${'created'.padEnd(16)}  ${'last used'.padEnd(16)}  status`,
        );
        for (const key of listing) {
          console.log(
            `${String(key.id).padStart(4)}  ${key.name.padEnd(24)} ${key.role.padEnd(15)} ${`cible_${key.prefix}_…`.padEnd(21)} ${minute(key.createdAt)}  ${minute(key.lastUsedAt).padEnd(16)}  ${key.revokedAt ? `revoked ${minute(key.revokedAt)}` : 'active'}`,
          );
        }
      }),
    );

  keys
    .command('revoke <id>')
    .description('revoke an API key: the API refuses it from now on')
    .action((value: string) => {
      const id = parseKeyId(value);
      return withContext({ migrate: true }, async (context) => {
        const now = context.clock.now();
        const revoked = await context.database.db.transaction().execute(async (trx) => {
          if (!(await revokeApiKey(trx, id, now))) return false;
          await appendAuditLog(trx, {
            at: now,
            actor: cliActor(),
            action: 'api_key.revoke',
            subjectType: 'api_key',
            subjectId: String(id),
            details: {},
          });
          return true;
        });
        if (!revoked) throw new UserError(`no active API key ${id} (unknown or already revoked); see cible keys list`);
        console.log(`API key ${id} revoked`);
      });
    });
}
