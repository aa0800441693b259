import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_HEADERS, type DemoFiles, type DemoOptions, type DemoSummary, writeDemoFiles } from '../../src/demo/demo.generator.ts';
import { iso } from '../../src/demo/time.ts';
import { groupBy, ms, nationalNumber, type ParsedDemo, phoneFormat, type Row, readDemo, signalFigures } from './demo-files.ts';

const NOW = new Date('2026-03-01T00:00:00.000Z');
const OPTIONS: DemoOptions = { contacts: 2000, seed: 7, now: NOW };
const GDPR_START = Date.parse('2018-05-25T00:00:00.000Z');
const DAY = 86_400_000;
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const FICTION_NUMBER = /^(63998|19900|26191|35301|46571|53649)\d{4}$/;
const EXPLICIT = ['explicit_checkbox', 'double_opt_in', 'signed_form', 'recorded_verbal'];
const NEVER_VALID = ['pre_ticked', 'implied', 'bundled'];
const SOURCES = ['web_form', 'checkout', 'call_centre', 'paper_form', 'mobile_app', 'store'];
const CHANNELS = ['email', 'sms', 'phone', 'postal', 'push'];
const FILE_KINDS = ['contacts', 'products', 'purchases', 'consents', 'opposition'] as const;

let root: string;
let files: DemoFiles;
let summary: DemoSummary;
let demo: ParsedDemo;
let contactById: Map<string, Row>;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'cible-demo-'));
  ({ files, summary } = await writeDemoFiles(join(root, 'a'), OPTIONS));
  demo = readDemo(files);
  contactById = new Map(demo.contacts.map((c) => [c.external_id as string, c]));
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

const share = (part: number, whole: number) => part / whole;

/** Checks every row and fails with the first offenders, instead of one expect per row (there are ~200k). */
function expectEvery<T>(items: Iterable<T>, problem: (item: T) => string | false): void {
  const found: string[] = [];
  for (const item of items) {
    const p = problem(item);
    if (p) found.push(`${p}: ${JSON.stringify(item)}`);
    if (found.length === 5) break;
  }
  expect(found).toEqual([]);
}
const createdAt = (externalId: string) => ms(contactById.get(externalId)?.created_at as string);

describe('demo files', () => {
  it('writes the five files with the documented headers, at absolute paths', () => {
    for (const kind of FILE_KINDS) {
      expect(isAbsolute(files[kind])).toBe(true);
      expect(demo.headers[kind]).toEqual(DEMO_HEADERS[kind]);
    }
    expect(DEMO_HEADERS.consents).toEqual([
      'external_id',
      'purpose',
      'channel',
      'status',
      'captured_at',
      'source',
      'method',
      'notice_version',
      'evidence_ref',
      'expires_at',
    ]);
    expect(readFileSync(files.purchases, 'utf8').split('\n', 1)[0]).toBe('order_id,external_id,sku,quantity,unit_price,purchased_at');
  });

  it('reports a summary that matches the files', () => {
    expect(summary.contacts).toBe(demo.contacts.length);
    expect(summary.products).toBe(demo.products.length);
    expect(summary.categories).toBe(new Set(demo.products.map((p) => p.category)).size);
    expect(summary.purchases).toBe(demo.purchases.length);
    expect(summary.orders).toBe(new Set(demo.purchases.map((p) => p.order_id)).size);
    expect(summary.consentEvents).toBe(demo.consents.length);
    expect(summary.oppositionEntries).toBe(demo.opposition.length);
    const b = summary.breakdown;
    expect(b.buyers).toBe(new Set(demo.purchases.map((p) => p.external_id)).size);
    expect(b.buyers + b.prospects).toBe(summary.contacts);
    expect(b.withEmail).toBe(demo.contacts.filter((c) => c.email).length);
    expect(Object.values(b.profiling).reduce((sum, n) => sum + n, 0)).toBe(summary.contacts);
  });

  it('gives byte-identical files for the same seed, different ones for another seed', async () => {
    const same = await writeDemoFiles(join(root, 'b'), OPTIONS);
    const other = await writeDemoFiles(join(root, 'c'), { ...OPTIONS, seed: OPTIONS.seed + 1 });
    for (const kind of FILE_KINDS) {
      expect(readFileSync(same.files[kind]).equals(readFileSync(files[kind])), kind).toBe(true);
    }
    expect(same.summary).toEqual(summary);
    for (const kind of ['contacts', 'purchases', 'consents', 'opposition'] as const) {
      expect(readFileSync(other.files[kind]).equals(readFileSync(files[kind])), kind).toBe(false);
    }
  });

  it('writes ISO 8601 UTC instants, all before now', () => {
    const instants = [
      ...demo.contacts.map((c) => c.created_at),
      ...demo.purchases.map((p) => p.purchased_at),
      ...demo.consents.map((c) => c.captured_at),
    ] as string[];
    expectEvery(instants, (instant) => (!ISO.test(instant) ? 'not ISO' : ms(instant) >= NOW.getTime() && 'not before now'));
  });

  it('formats instants exactly like Date#toISOString', () => {
    for (const instant of [
      0,
      GDPR_START + 1,
      NOW.getTime() - 1,
      Date.parse('2024-02-29T23:59:59.999Z'),
      Date.parse('1999-12-31T00:00:00.007Z'),
    ]) {
      expect(iso(instant)).toBe(new Date(instant).toISOString());
    }
  });

  it('rejects options it cannot honour', async () => {
    await expect(writeDemoFiles(join(root, 'd'), { ...OPTIONS, contacts: -1 })).rejects.toThrow(RangeError);
    await expect(writeDemoFiles(join(root, 'd'), { ...OPTIONS, now: new Date('nonsense') })).rejects.toThrow(RangeError);
  });
});

describe('contacts', () => {
  it('have unique external ids and names', () => {
    expect(contactById.size).toBe(OPTIONS.contacts);
    expectEvery(demo.contacts, (c) =>
      !/^C\d{6}$/.test(c.external_id as string) ? 'bad id' : (!c.first_name || !c.last_name) && 'no name',
    );
  });

  it('have unique emails on reserved domains only, for about 90% of them', () => {
    const emails = demo.contacts.map((c) => c.email as string).filter(Boolean);
    expect(share(emails.length, demo.contacts.length)).toBeGreaterThan(0.86);
    expect(share(emails.length, demo.contacts.length)).toBeLessThan(0.94);
    expect(new Set(emails).size).toBe(emails.length);
    expectEvery(emails, (email) => !/^[a-z0-9._]+@example\.(com|org|net)$/.test(email) && 'not on a reserved domain');
  });

  it('have French fiction phone numbers in mixed formats, for about 70% of them', () => {
    const phones = demo.contacts.map((c) => c.phone as string).filter(Boolean);
    expect(share(phones.length, demo.contacts.length)).toBeGreaterThan(0.65);
    expect(share(phones.length, demo.contacts.length)).toBeLessThan(0.75);
    expectEvery(phones, (phone) => !FICTION_NUMBER.test(nationalNumber(phone)) && 'not a fiction number');
    const formats = new Set(phones.map(phoneFormat));
    expect(formats).toContain('+33 d dd dd dd dd');
    expect(formats).toContain('dd dd dd dd dd');
    expect(formats).toContain('dddddddddd');
  });

  it('live mostly in France, some in Belgium, Switzerland and Luxembourg', () => {
    const countries = groupBy(demo.contacts, (c) => c.country as string);
    expect([...countries.keys()].sort()).toEqual(['BE', 'CH', 'FR', 'LU']);
    expect(share(countries.get('FR')?.length ?? 0, demo.contacts.length)).toBeGreaterThan(0.78);
  });

  it('were created over the years before now, a few before the GDPR', () => {
    const created = demo.contacts.map((c) => ms(c.created_at as string));
    expect(Math.min(...created)).toBeLessThan(GDPR_START);
    expect(share(created.filter((t) => t < GDPR_START).length, created.length)).toBeLessThan(0.15);
    expect(share(created.filter((t) => t > NOW.getTime() - 365 * DAY).length, created.length)).toBeGreaterThan(0.15);
  });
});

describe('products', () => {
  it('are 30 by default across six categories, with unique SKUs', () => {
    expect(demo.products).toHaveLength(30);
    expect(new Set(demo.products.map((p) => p.category))).toEqual(new Set(['garden', 'kitchen', 'kids', 'sport', 'beauty', 'books']));
    expect(new Set(demo.products.map((p) => p.sku)).size).toBe(30);
    for (const p of demo.products) expect(p.sku).toMatch(/^SKU-[A-Z]{3}-\d{3}$/);
  });

  it('round-trip names that need RFC 4180 quoting', () => {
    const names = demo.products.map((p) => p.name);
    expect(names).toContain('Espresso cups, set of 4');
    expect(names).toContain('Board game "Jungle"');
  });

  it('honour a different product count', async () => {
    const { files: small } = await writeDemoFiles(join(root, 'e'), { ...OPTIONS, contacts: 50, products: 8 });
    const parsed = readDemo(small);
    expect(parsed.products).toHaveLength(8);
    const skus = new Set(parsed.products.map((p) => p.sku));
    expectEvery(parsed.purchases, (line) => !skus.has(line.sku) && 'unknown sku');
  });
});

describe('purchases', () => {
  it('reference existing contacts and products', () => {
    const skus = new Set(demo.products.map((p) => p.sku));
    expectEvery(demo.purchases, (line) =>
      !contactById.has(line.external_id as string) ? 'unknown contact' : !skus.has(line.sku) && 'unknown sku',
    );
  });

  it('have positive integer quantities and prices close to the product price', () => {
    const prices = groupBy(demo.purchases, (p) => p.sku as string);
    for (const lines of prices.values()) {
      const sorted = lines.map((l) => Number(l.unit_price)).sort((a, b) => a - b);
      const median = sorted[Math.floor(sorted.length / 2)] as number;
      expectEvery(lines, (line) => {
        if (!/^[1-9]\d*$/.test(line.quantity as string)) return 'quantity';
        if (!/^\d+\.\d{2}$/.test(line.unit_price as string)) return 'price format';
        const ratio = Number(line.unit_price) / median;
        return (ratio < 0.6 || ratio > 1.1) && 'price far from the product price';
      });
    }
  });

  it('have one line per (order_id, sku), one contact and one instant per order', () => {
    const keys = new Set(demo.purchases.map((p) => `${p.order_id}|${p.sku}`));
    expect(keys.size).toBe(demo.purchases.length);
    expectEvery(
      groupBy(demo.purchases, (p) => p.order_id as string).values(),
      (lines) => new Set(lines.map((l) => `${l.external_id}|${l.purchased_at}`)).size !== 1 && 'order split across contacts or instants',
    );
  });

  it('cover the year before now, after each contact was created', () => {
    expectEvery(demo.purchases, (line) => {
      const at = ms(line.purchased_at as string);
      if (at <= createdAt(line.external_id as string)) return 'before the contact existed';
      return (at < NOW.getTime() - 365 * DAY || at >= NOW.getTime()) && 'outside the year before now';
    });
  });

  it('average about ten lines per contact, with 30-40% prospects who never bought', () => {
    expect(share(demo.purchases.length, demo.contacts.length)).toBeGreaterThan(7.5);
    expect(share(demo.purchases.length, demo.contacts.length)).toBeLessThan(12.5);
    const prospects = demo.contacts.length - new Set(demo.purchases.map((p) => p.external_id)).size;
    expect(share(prospects, demo.contacts.length)).toBeGreaterThan(0.3);
    expect(share(prospects, demo.contacts.length)).toBeLessThan(0.4);
  });
});

describe('purchase signal', () => {
  it('frequency predicts the future: heavy buyers of the first 9 months keep buying more in the last 3', () => {
    const s = signalFigures(demo, NOW);
    expect(s.heavyNextOrders).toBeGreaterThan(3 * s.lightNextOrders);
  });

  it('recency predicts the future: repeat buyers who lapsed early rarely come back', () => {
    const s = signalFigures(demo, NOW);
    expect(s.activeRepeaterNextOrders).toBeGreaterThan(3 * s.lapsedRepeaterNextOrders);
  });

  it("a buyer's top category of the first 9 months is over-represented in their last 3", () => {
    const s = signalFigures(demo, NOW);
    expect(s.topCategoryShare).toBeGreaterThan(2 * s.topCategoryExpected);
  });

  it('categories are seasonal: garden in spring, kids before Christmas', () => {
    const categoryOf = new Map(demo.products.map((p) => [p.sku, p.category]));
    const shareIn = (category: string, months: number[]) => {
      const lines = demo.purchases.filter((p) => months.includes(new Date(p.purchased_at as string).getUTCMonth()));
      return share(lines.filter((p) => categoryOf.get(p.sku) === category).length, lines.length);
    };
    expect(shareIn('garden', [3, 4, 5])).toBeGreaterThan(2 * shareIn('garden', [10, 11, 0]));
    expect(shareIn('kids', [10, 11])).toBeGreaterThan(1.5 * shareIn('kids', [1, 2, 3, 4, 5, 6]));
  });

  it('buyers come back to products they already bought', () => {
    const seen = new Set<string>();
    let repeats = 0;
    const chronological = [...demo.purchases].sort((a, b) => ms(a.purchased_at as string) - ms(b.purchased_at as string));
    for (const line of chronological) {
      const key = `${line.external_id}|${line.sku}`;
      if (seen.has(key)) repeats++;
      seen.add(key);
    }
    expect(share(repeats, demo.purchases.length)).toBeGreaterThan(0.2);
  });
});

describe('consents', () => {
  it('reference existing contacts, with channel empty if and only if the purpose is profiling', () => {
    expectEvery(demo.consents, (c) => {
      const contact = contactById.get(c.external_id as string);
      if (!contact) return 'unknown contact';
      if (c.purpose === 'profiling') return c.channel !== '' && 'profiling with a channel';
      if (c.purpose !== 'direct_marketing') return 'unknown purpose';
      if (!CHANNELS.includes(c.channel as string)) return 'unknown channel';
      if (c.channel === 'email' && !contact.email) return 'email consent without email';
      return (c.channel === 'sms' || c.channel === 'phone') && !contact.phone && 'phone consent without phone';
    });
  });

  it('use only the known statuses, methods and touch points, with opaque evidence', () => {
    expectEvery(demo.consents, (c) => {
      if (!['granted', 'withdrawn', 'refused'].includes(c.status as string)) return 'status';
      if (!['', ...EXPLICIT, ...NEVER_VALID].includes(c.method as string)) return 'method';
      if (!['', ...SOURCES].includes(c.source as string)) return 'source';
      if (!/^(privacy-v\d+)?$/.test(c.notice_version as string)) return 'notice version';
      return !/^(ev-[0-9a-f]{16})?$/.test(c.evidence_ref as string) && 'evidence ref';
    });
  });

  it('lack a source only when they lack all proof and predate the GDPR', () => {
    expectEvery(demo.consents, (c) => {
      const captured = ms(c.captured_at as string);
      if (c.source !== '') return (captured < GDPR_START || c.evidence_ref === '') && 'proof expected';
      return (c.method !== '' || c.notice_version !== '' || c.evidence_ref !== '' || captured >= GDPR_START) && 'partial proof';
    });
    expect(demo.consents.some((c) => c.source === '')).toBe(true);
  });

  it('are captured after the contact was created and before now; expiry follows capture', () => {
    expectEvery(demo.consents, (c) => {
      const captured = ms(c.captured_at as string);
      if (captured <= createdAt(c.external_id as string)) return 'before the contact existed';
      if (captured >= NOW.getTime()) return 'not before now';
      return c.expires_at !== '' && (!ISO.test(c.expires_at as string) || ms(c.expires_at as string) <= captured) && 'bad expiry';
    });
    expect(share(demo.consents.filter((c) => c.expires_at).length, demo.consents.length)).toBeLessThan(0.1);
  });

  it('withdraw only what was granted before', () => {
    const streams = groupBy(demo.consents, (c) => `${c.external_id}|${c.purpose}|${c.channel}`);
    expectEvery(streams.values(), (events) => {
      const ordered = [...events].sort((a, b) => ms(a.captured_at as string) - ms(b.captured_at as string));
      return ordered.some((event, i) => event.status === 'withdrawn' && ordered[i - 1]?.status !== 'granted') && 'withdrawal without grant';
    });
  });
});

type ProfilingClass = 'valid' | 'never' | 'withdrawn' | 'invalidMethod' | 'missingProof' | 'expired';

/** The latest profiling event of each contact, judged as the consent gate would. */
function classifyProfiling(events: Row[] | undefined): ProfilingClass {
  const latest = [...(events ?? [])].sort((a, b) => ms(a.captured_at as string) - ms(b.captured_at as string)).at(-1);
  if (!latest || latest.status === 'refused') return 'never';
  if (latest.status === 'withdrawn') return 'withdrawn';
  if (NEVER_VALID.includes(latest.method as string)) return 'invalidMethod';
  if (latest.source === '' || ms(latest.captured_at as string) < GDPR_START) return 'missingProof';
  if (latest.expires_at && ms(latest.expires_at) <= NOW.getTime()) return 'expired';
  return 'valid';
}

describe('consent mix', () => {
  const profilingOf = () =>
    groupBy(
      demo.consents.filter((c) => c.purpose === 'profiling'),
      (c) => c.external_id as string,
    );

  it('looks like a real CRM: about 70-75% may be profiled, the rest for many different reasons', () => {
    const byContact = profilingOf();
    const classes = groupBy(demo.contacts, (c) => classifyProfiling(byContact.get(c.external_id as string)));
    const shareOf = (k: ProfilingClass) => share(classes.get(k)?.length ?? 0, demo.contacts.length);
    expect(shareOf('valid')).toBeGreaterThan(0.7);
    expect(shareOf('valid')).toBeLessThan(0.79);
    expect(shareOf('never')).toBeGreaterThan(0.06);
    expect(shareOf('never')).toBeLessThan(0.13);
    expect(shareOf('withdrawn')).toBeGreaterThan(0.02);
    expect(shareOf('withdrawn')).toBeLessThan(0.07);
    expect(shareOf('invalidMethod')).toBeGreaterThan(0.025);
    expect(shareOf('invalidMethod')).toBeLessThan(0.065);
    expect(shareOf('missingProof')).toBeGreaterThan(0.025);
    expect(shareOf('missingProof')).toBeLessThan(0.065);
    expect(shareOf('expired')).toBeGreaterThan(0.005);
    expect(shareOf('expired')).toBeLessThan(0.05);
    expect(classes.get('valid')?.length).toBe(summary.breakdown.profilingEligible);
  });

  it('has some people who withdrew and later granted again', () => {
    const regranted = [...profilingOf().values()].filter((events) => {
      const statuses = [...events].sort((a, b) => ms(a.captured_at as string) - ms(b.captured_at as string)).map((e) => e.status);
      return statuses.join(',') === 'granted,withdrawn,granted';
    });
    expect(regranted.length).toBeGreaterThan(5);
    expect(regranted.length).toBe(summary.breakdown.profiling.withdrewThenRegranted);
  });

  it('has per-channel marketing consents at realistic rates, some withdrawn', () => {
    const marketing = demo.consents.filter((c) => c.purpose === 'direct_marketing');
    const grantedTo = (channel: string) =>
      new Set(marketing.filter((c) => c.channel === channel && c.status === 'granted').map((c) => c.external_id));
    const withEmail = demo.contacts.filter((c) => c.email).length;
    const withPhone = demo.contacts.filter((c) => c.phone).length;
    const rate = (channel: string, base: number) => share(grantedTo(channel).size, base);
    expect(rate('email', withEmail)).toBeGreaterThan(0.54);
    expect(rate('email', withEmail)).toBeLessThan(0.66);
    expect(rate('sms', withPhone)).toBeGreaterThan(0.29);
    expect(rate('sms', withPhone)).toBeLessThan(0.41);
    expect(rate('phone', withPhone)).toBeGreaterThan(0.1);
    expect(rate('phone', withPhone)).toBeLessThan(0.2);
    for (const channel of ['postal', 'push']) {
      expect(rate(channel, demo.contacts.length)).toBeGreaterThan(0.07);
      expect(rate(channel, demo.contacts.length)).toBeLessThan(0.13);
    }
    const phoneGranted = grantedTo('phone');
    expect([...grantedTo('sms')].filter((id) => !phoneGranted.has(id)).length).toBeGreaterThan(100);
    expect(marketing.filter((c) => c.status === 'withdrawn').length).toBeGreaterThan(50);
  });
});

describe('opposition list', () => {
  it('lists about 3% of the phone holders plus numbers outside the base, in mixed formats', () => {
    const values = demo.opposition.map((o) => o.value as string);
    const numbers = values.map(nationalNumber);
    expectEvery(numbers, (n) => !FICTION_NUMBER.test(n) && 'not a fiction number');
    expect(new Set(numbers).size).toBe(numbers.length);
    expect(new Set(values.map(phoneFormat)).size).toBeGreaterThanOrEqual(3);

    const listed = new Set(numbers);
    const holders = demo.contacts.filter((c) => c.phone);
    const matched = holders.filter((c) => listed.has(nationalNumber(c.phone as string)));
    expect(share(matched.length, holders.length)).toBeGreaterThan(0.015);
    expect(share(matched.length, holders.length)).toBeLessThan(0.05);
    expect(matched.length).toBe(summary.breakdown.opposition.contactsMatched);

    const inBase = new Set(holders.map((c) => nationalNumber(c.phone as string)));
    expect(numbers.filter((n) => !inBase.has(n)).length).toBe(summary.breakdown.opposition.outsideBase);
    expect(summary.breakdown.opposition.outsideBase).toBeGreaterThan(0);
  });
});
