import type { Generated } from 'kysely';

export interface ProductTable {
  id: Generated<number>;
  sku: string;
  name: string;
  category: string;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}
