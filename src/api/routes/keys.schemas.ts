import { z } from '@hono/zod-openapi';
import { type ApiKeyListing, ROLES } from '../../auth/api-key.repository.ts';
import type { Role } from '../../auth/api-key.table.ts';

export const RoleSchema = z.enum(ROLES as [Role, ...Role[]]).openapi('Role');

const DateTime = z.string().openapi({ format: 'date-time' });

export const ApiKeySchema = z
  .object({
    id: z.number().int(),
    name: z.string(),
    role: RoleSchema,
    prefix: z.string().openapi({ description: 'the public part of the key, to recognise it: cible_<prefix>_…', example: '3f2a9c81d0e4' }),
    createdAt: DateTime,
    lastUsedAt: DateTime.nullable().openapi({ description: 'to the minute' }),
    revokedAt: DateTime.nullable(),
  })
  .openapi('ApiKey');

export function apiKeyJson(key: ApiKeyListing) {
  return {
    id: key.id,
    name: key.name,
    role: key.role,
    prefix: key.prefix,
    createdAt: key.createdAt.toISOString(),
    lastUsedAt: key.lastUsedAt?.toISOString() ?? null,
    revokedAt: key.revokedAt?.toISOString() ?? null,
  };
}
