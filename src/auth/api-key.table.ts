import type { Generated } from 'kysely';

export type Role = 'marketer' | 'data_scientist' | 'scheduler' | 'dpo' | 'admin';

export interface ApiKeyTable {
  id: Generated<number>;
  name: string;
  role: Role;
  key_prefix: string;
  key_hash: string;
  created_at: Generated<Date>;
  last_used_at: Date | null;
  revoked_at: Date | null;
}
