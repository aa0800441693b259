import { readFileSync } from 'node:fs';
import type { DemoFiles } from '../../src/demo/demo.generator.ts';
import { csvRecords, csvRows } from '../helpers/csv.ts';

/** The five demo files parsed back as the importer will read them. */
export type Row = Record<string, string>;

export interface ParsedDemo {
  headers: Record<keyof Omit<DemoFiles, 'dir'>, string[]>;
  contacts: Row[];
  products: Row[];
  purchases: Row[];
  consents: Row[];
  opposition: Row[];
}

function readCsv(path: string): { header: string[]; rows: Row[] } {
  const text = readFileSync(path, 'utf8');
  const [header = []] = csvRows(text);
  const rows = csvRecords(text);
  return { header, rows };
}

export function readDemo(files: DemoFiles): ParsedDemo {
  const contacts = readCsv(files.contacts);
  const products = readCsv(files.products);
  const purchases = readCsv(files.purchases);
  const consents = readCsv(files.consents);
  const opposition = readCsv(files.opposition);
  return {
    headers: {
      contacts: contacts.header,
      products: products.header,
      purchases: purchases.header,
      consents: consents.header,
      opposition: opposition.header,
    },
    contacts: contacts.rows,
    products: products.rows,
    purchases: purchases.rows,
    consents: consents.rows,
    opposition: opposition.rows,
  };
}

export const ms = (iso: string) => Date.parse(iso);

export function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const group = groups.get(k);
    if (group) group.push(item);
    else groups.set(k, [item]);
  }
  return groups;
}

/** National significant number of a French number written in any of the usual formats. */
export function nationalNumber(phone: string): string {
  const digits = phone.replace(/[\s.]/g, '');
  return digits.startsWith('+33') ? digits.slice(3) : digits.replace(/^0/, '');
}

/** The shape of a number's formatting, digits replaced: '+33 d dd dd dd dd', '0ddddddddd', ... */
export function phoneFormat(phone: string): string {
  return phone.startsWith('+33') ? `+33${phone.slice(3).replace(/\d/g, 'd')}` : phone.replace(/\d/g, 'd');
}

export interface SignalFigures {
  /** mean orders in the last 3 months of contacts in the top quartile of orders in the first 9 */
  heavyNextOrders: number;
  /** same for contacts with a single order in the first 9 months */
  lightNextOrders: number;
  /** share of last-3-month lines in each buyer's first-9-month top category */
  topCategoryShare: number;
  /** what that share would be if buyers picked categories like everybody else */
  topCategoryExpected: number;
  /** repeat buyers who kept buying late in the first 9 months vs those who lapsed early */
  activeRepeaterNextOrders: number;
  lapsedRepeaterNextOrders: number;
}

/**
 * Splits the year at `cutoff` (3 months before now) and measures whether the
 * past predicts the future: frequency, recency and category affinity.
 */
export function signalFigures(demo: ParsedDemo, now: Date, cutoffDays = 91): SignalFigures {
  const cutoff = now.getTime() - cutoffDays * 86_400_000;
  const categoryOf = new Map(demo.products.map((p) => [p.sku as string, p.category as string]));
  const byContact = groupBy(demo.purchases, (p) => p.external_id as string);

  const history = [...byContact.values()].map((lines) => {
    const before = lines.filter((l) => ms(l.purchased_at as string) < cutoff);
    const after = lines.filter((l) => ms(l.purchased_at as string) >= cutoff);
    const orders = (ls: Row[]) => new Set(ls.map((l) => l.order_id)).size;
    const lastBefore = Math.max(...before.map((l) => ms(l.purchased_at as string)));
    return { before, after, ordersBefore: orders(before), ordersAfter: orders(after), lastBefore };
  });

  const withPast = history.filter((h) => h.ordersBefore > 0);
  const sortedCounts = withPast.map((h) => h.ordersBefore).sort((a, b) => a - b);
  const q3 = sortedCounts[Math.floor(sortedCounts.length * 0.75)] ?? 0;
  const meanAfter = (group: typeof history) => group.reduce((sum, h) => sum + h.ordersAfter, 0) / Math.max(1, group.length);

  const lateLines = demo.purchases.filter((l) => ms(l.purchased_at as string) >= cutoff);
  const lateCategoryShare = new Map<string, number>();
  for (const l of lateLines) {
    const c = categoryOf.get(l.sku as string) as string;
    lateCategoryShare.set(c, (lateCategoryShare.get(c) ?? 0) + 1 / lateLines.length);
  }
  let inTop = 0;
  let expected = 0;
  let lateTotal = 0;
  for (const h of withPast.filter((x) => x.before.length >= 3 && x.after.length > 0)) {
    const counts = groupBy(h.before, (l) => categoryOf.get(l.sku as string) as string);
    const top = [...counts].sort((a, b) => b[1].length - a[1].length)[0]?.[0] as string;
    inTop += h.after.filter((l) => categoryOf.get(l.sku as string) === top).length;
    expected += h.after.length * (lateCategoryShare.get(top) ?? 0);
    lateTotal += h.after.length;
  }

  const repeaters = withPast.filter((h) => h.ordersBefore >= 3);
  const recentLimit = cutoff - 60 * 86_400_000;
  const lapsedLimit = cutoff - 150 * 86_400_000;
  return {
    heavyNextOrders: meanAfter(withPast.filter((h) => h.ordersBefore >= q3)),
    lightNextOrders: meanAfter(withPast.filter((h) => h.ordersBefore === 1)),
    topCategoryShare: inTop / lateTotal,
    topCategoryExpected: expected / lateTotal,
    activeRepeaterNextOrders: meanAfter(repeaters.filter((h) => h.lastBefore >= recentLimit)),
    lapsedRepeaterNextOrders: meanAfter(repeaters.filter((h) => h.lastBefore < lapsedLimit)),
  };
}
