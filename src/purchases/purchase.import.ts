import { normalizeExternalId } from '../contacts/identity.ts';
import { type ImporterDefinition, type LineReject, RowBuilder } from '../imports/importer.ts';
import { duplicateKeyLines, unknownContactLines } from '../imports/set-checks.ts';
import { parseAmount, parsePositiveInteger, parseText, parseTimestamp } from '../imports/values.ts';

export const purchaseImporter: ImporterDefinition = {
  kind: 'purchases',
  required: ['order_id', 'external_id', 'sku', 'quantity', 'unit_price', 'purchased_at'],
  optional: [],
  writes: ['purchases'],
  staging: [
    { name: 'order_id', type: 'text' },
    { name: 'external_id', type: 'text' },
    { name: 'sku', type: 'text' },
    { name: 'quantity', type: 'integer' },
    { name: 'unit_price', type: 'numeric' },
    { name: 'purchased_at', type: 'timestamptz' },
  ],

  async prepare({ options, now }) {
    return (values) => {
      const row = new RowBuilder();
      row.add('order_id', parseText(values.order_id, 100));
      row.add('external_id', parseText(normalizeExternalId(values.external_id ?? ''), 200));
      row.add('sku', parseText(values.sku, 100));
      row.add('quantity', parsePositiveInteger(values.quantity ?? ''));
      row.add('unit_price', parseAmount(values.unit_price ?? ''));
      const purchasedAt = row.add('purchased_at', parseTimestamp(values.purchased_at ?? '', options.dateFormat));
      if (purchasedAt && purchasedAt > now) row.fail('purchased_at', `${purchasedAt.toISOString()} is in the future`);
      return row.result();
    };
  },

  async check({ client, options }) {
    const rejects: LineReject[] = [];
    rejects.push(...(await unknownContactLines(client)));
    const unknownSkus = await client.query<{ line: number; sku: string }>(
      `SELECT s.line, s.sku FROM import_staging s
       WHERE NOT EXISTS (SELECT 1 FROM products p WHERE p.sku = s.sku) ORDER BY s.line`,
    );
    rejects.push(
      ...unknownSkus.rows.map((row) => ({
        line: row.line,
        field: 'sku',
        message: `no product has sku "${row.sku}" (import products first)`,
      })),
    );
    // an order belongs to one person
    const foreignLines = await client.query<{ line: number; order_id: string; first_line: number }>(
      `SELECT line, order_id, first_line FROM (
         SELECT line, order_id, external_id,
                first_value(external_id) OVER (PARTITION BY order_id ORDER BY line) AS first_owner,
                min(line) OVER (PARTITION BY order_id) AS first_line
         FROM import_staging
       ) lines WHERE external_id <> first_owner ORDER BY line`,
    );
    rejects.push(
      ...foreignLines.rows.map((row) => ({
        line: row.line,
        field: 'external_id',
        message: `order "${row.order_id}" belongs to another contact on line ${row.first_line}`,
      })),
    );
    if (!options.mergeLines) {
      rejects.push(
        ...(await duplicateKeyLines(
          client,
          ['order_id', 'sku'],
          (key, first) => `duplicate order line ${key}: already on line ${first} (--merge-lines sums them)`,
        )),
      );
    }
    return uniqueByLine(rejects);
  },

  async apply({ client, importId, options }) {
    // with merge-lines, lines of one order for the same product are summed at a quantity-weighted price
    const lines = options.mergeLines
      ? `SELECT s.order_id, c.id AS contact_id, p.id AS product_id,
                sum(s.quantity)::int AS quantity,
                round(sum(s.quantity * s.unit_price) / sum(s.quantity), 2) AS unit_price,
                min(s.purchased_at) AS purchased_at
         FROM import_staging s
         JOIN contacts c ON c.external_id = s.external_id
         JOIN products p ON p.sku = s.sku
         GROUP BY s.order_id, c.id, p.id`
      : `SELECT s.order_id, c.id AS contact_id, p.id AS product_id, s.quantity, s.unit_price, s.purchased_at
         FROM import_staging s
         JOIN contacts c ON c.external_id = s.external_id
         JOIN products p ON p.sku = s.sku`;
    const { rows } = await client.query<{ inserted: number; groups: number; staged: number }>(
      `WITH lines AS (${lines}), inserted AS (
         INSERT INTO purchases (order_id, contact_id, product_id, quantity, unit_price, purchased_at, import_id)
         SELECT order_id, contact_id, product_id, quantity, unit_price, purchased_at, $1 FROM lines
         ON CONFLICT (order_id, product_id) DO NOTHING
         RETURNING 1
       )
       SELECT (SELECT count(*) FROM inserted)::int AS inserted,
              (SELECT count(*) FROM lines)::int AS groups,
              (SELECT count(*) FROM import_staging)::int AS staged`,
      [importId],
    );
    const { inserted, groups, staged } = rows[0]!;
    return { inserted, updated: 0, unchanged: groups - inserted, merged: staged - groups };
  },
};

function uniqueByLine(rejects: LineReject[]): LineReject[] {
  const seen = new Set<number>();
  return rejects.filter((reject) => !seen.has(reject.line) && seen.add(reject.line));
}
