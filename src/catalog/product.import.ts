import { type ImporterDefinition, RowBuilder } from '../imports/importer.ts';
import { duplicateKeyLines } from '../imports/set-checks.ts';
import { parseText } from '../imports/values.ts';

export const productImporter: ImporterDefinition = {
  kind: 'products',
  required: ['sku', 'name', 'category'],
  optional: [],
  writes: ['products'],
  staging: [
    { name: 'sku', type: 'text' },
    { name: 'name', type: 'text' },
    { name: 'category', type: 'text' },
  ],

  async prepare() {
    return (values) => {
      const row = new RowBuilder();
      row.add('sku', parseText(values.sku, 100));
      row.add('name', parseText(values.name, 500));
      row.add('category', parseText(values.category, 100));
      return row.result();
    };
  },

  check: ({ client }) => duplicateKeyLines(client, ['sku'], (sku, first) => `duplicate sku "${sku}": already on line ${first}`),

  async apply({ client }) {
    const { rows } = await client.query<{ inserted: number; updated: number; staged: number }>(
      `WITH upserted AS (
         INSERT INTO products (sku, name, category)
         SELECT sku, name, category FROM import_staging
         ON CONFLICT (sku) DO UPDATE SET name = excluded.name, category = excluded.category, updated_at = now()
         WHERE (products.name, products.category) IS DISTINCT FROM (excluded.name, excluded.category)
         RETURNING (xmax = 0) AS is_new
       )
       SELECT count(*) FILTER (WHERE is_new)::int AS inserted,
              count(*) FILTER (WHERE NOT is_new)::int AS updated,
              (SELECT count(*) FROM import_staging)::int AS staged
       FROM upserted`,
    );
    const { inserted, updated, staged } = rows[0]!;
    return { inserted, updated, unchanged: staged - inserted - updated, merged: 0 };
  },
};
