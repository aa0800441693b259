import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { base, en, Faker, fr } from '@faker-js/faker';
import { buildCatalog, type Catalog } from './catalog.ts';
import {
  CHANNELS,
  type Channel,
  type ChannelState,
  type ConsentEvent,
  drawProfilingProfile,
  marketingEvents,
  PROFILING_PROFILES,
  type ProfilingProfile,
  profilingEvents,
} from './consents.ts';
import { CsvFile } from './csv-file.ts';
import { buildOppositionList } from './opposition.ts';
import { generateIdentity, type Identity, type NameSources, PHONE_KEY_SPACE } from './people.ts';
import { type BasketLine, drawBuyerTraits, PurchaseSimulator } from './purchases.ts';
import { Rng } from './random.ts';
import { DAY, GDPR_START, instantBetween, iso, MINUTE, YEAR } from './time.ts';

export interface DemoOptions {
  contacts: number;
  seed: number;
  /** default 30 */
  products?: number;
  /** end of the purchase history; nothing generated is at or after it */
  now: Date;
}

export interface DemoFiles {
  dir: string;
  contacts: string;
  products: string;
  purchases: string;
  consents: string;
  opposition: string;
}

export interface ChannelBreakdown {
  /** latest consent is an explicit grant with proof */
  active: number;
  withdrawn: number;
  /** pre-ticked / implied / bundled, or collected before the GDPR without proof */
  invalid: number;
}

export interface DemoBreakdown {
  /** contacts with at least one purchase line */
  buyers: number;
  /** contacts without any purchase line */
  prospects: number;
  withEmail: number;
  withPhone: number;
  countries: Record<string, number>;
  /** one profile per contact, see PROFILING_PROFILES */
  profiling: Record<ProfilingProfile, number>;
  /** contacts whose profiling consent is valid now: 'valid' + 'withdrewThenRegranted' */
  profilingEligible: number;
  channels: Record<Channel, ChannelBreakdown>;
  /** may receive SMS but not calls */
  smsWithoutPhone: number;
  /** some active channel consent but no valid profiling consent */
  channelOnly: number;
  opposition: { inBase: number; outsideBase: number; contactsMatched: number };
}

export interface DemoSummary {
  contacts: number;
  products: number;
  categories: number;
  /** purchase lines */
  purchases: number;
  orders: number;
  consentEvents: number;
  oppositionEntries: number;
  breakdown: DemoBreakdown;
}

export const DEMO_HEADERS = {
  contacts: ['external_id', 'email', 'phone', 'first_name', 'last_name', 'country', 'created_at'],
  products: ['sku', 'name', 'category'],
  purchases: ['order_id', 'external_id', 'sku', 'quantity', 'unit_price', 'purchased_at'],
  consents: [
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
  ],
  opposition: ['value'],
} as const;

const DEFAULT_PRODUCTS = 30;
const LEGACY_SHARE = 0.05;
const CONTACT_HISTORY = 4 * YEAR;
const EARLIEST_NOW = Date.UTC(2019, 0, 1);

type ContactFiles = Record<'contacts' | 'purchases' | 'consents', CsvFile>;

/**
 * Writes a seeded synthetic contact base as the five import CSV files.
 * Contacts are generated and written one at a time, so memory does not grow
 * with the number of purchases; the same seed and options give the same bytes.
 */
export async function writeDemoFiles(dir: string, options: DemoOptions): Promise<{ files: DemoFiles; summary: DemoSummary }> {
  const { contacts, seed, products, now } = checkedOptions(options);
  const files = demoFilePaths(dir);
  await mkdir(files.dir, { recursive: true });

  const names = seededNames(seed);
  const rng = new Rng([0, 1, 2, 3].map(() => names.fr.number.int({ min: 0, max: 0xffffffff })) as [number, number, number, number]);
  const catalog = buildCatalog(products, rng);
  await writeProducts(files.products, catalog);

  const summary = emptySummary(catalog);
  const phoneUseCount = new Uint32Array(PHONE_KEY_SPACE);
  const out: ContactFiles = {
    contacts: new CsvFile(files.contacts, DEMO_HEADERS.contacts),
    purchases: new CsvFile(files.purchases, DEMO_HEADERS.purchases),
    consents: new CsvFile(files.consents, DEMO_HEADERS.consents),
  };
  try {
    const generator = new ContactGenerator(names, rng, catalog, now, out, summary);
    const streamed = Object.values(out);
    for (let i = 0; i < contacts; i++) {
      const identity = generator.next(i);
      if (identity.phoneKey >= 0) phoneUseCount[identity.phoneKey] = (phoneUseCount[identity.phoneKey] as number) + 1;
      if (streamed.some((file) => file.full)) await Promise.all(streamed.map((file) => file.flushIfFull()));
    }
    await Promise.all(streamed.map((file) => file.close()));
  } catch (error) {
    for (const file of Object.values(out)) file.destroy();
    throw error;
  }

  const opposition = buildOppositionList(phoneUseCount, rng);
  await writeRows(
    files.opposition,
    DEMO_HEADERS.opposition,
    opposition.values.map((value) => [value]),
  );
  summary.oppositionEntries = opposition.values.length;
  summary.breakdown.opposition = {
    inBase: opposition.inBase,
    outsideBase: opposition.outsideBase,
    contactsMatched: opposition.contactsMatched,
  };
  return { files, summary };
}

export function demoFilePaths(dir: string): DemoFiles {
  const absolute = resolve(dir);
  const file = (name: string) => resolve(absolute, `${name}.csv`);
  return {
    dir: absolute,
    contacts: file('contacts'),
    products: file('products'),
    purchases: file('purchases'),
    consents: file('consents'),
    opposition: file('opposition'),
  };
}

function checkedOptions(options: DemoOptions): Required<DemoOptions> {
  const { contacts, seed, products = DEFAULT_PRODUCTS, now } = options;
  if (!Number.isSafeInteger(contacts) || contacts < 0) throw new RangeError('contacts must be a non-negative integer');
  if (!Number.isSafeInteger(seed)) throw new RangeError('seed must be an integer');
  if (!Number.isSafeInteger(products) || products < 1) throw new RangeError('products must be a positive integer');
  if (!(now instanceof Date) || Number.isNaN(now.getTime()) || now.getTime() < EARLIEST_NOW) {
    throw new RangeError('now must be a valid date in 2019 or later');
  }
  return { contacts, seed, products, now };
}

function seededNames(seed: number): NameSources {
  const names = { fr: new Faker({ locale: [fr, base] }), en: new Faker({ locale: [en, base] }) };
  names.fr.seed(seed);
  names.en.seed([seed, 1]);
  return names;
}

function emptySummary(catalog: Catalog): DemoSummary {
  const channel = (): ChannelBreakdown => ({ active: 0, withdrawn: 0, invalid: 0 });
  return {
    contacts: 0,
    products: catalog.products.length,
    categories: catalog.categories.length,
    purchases: 0,
    orders: 0,
    consentEvents: 0,
    oppositionEntries: 0,
    breakdown: {
      buyers: 0,
      prospects: 0,
      withEmail: 0,
      withPhone: 0,
      countries: {},
      profiling: Object.fromEntries(PROFILING_PROFILES.map((p) => [p, 0])) as Record<ProfilingProfile, number>,
      profilingEligible: 0,
      channels: Object.fromEntries(CHANNELS.map((c) => [c, channel()])) as Record<Channel, ChannelBreakdown>,
      smsWithoutPhone: 0,
      channelOnly: 0,
      opposition: { inBase: 0, outsideBase: 0, contactsMatched: 0 },
    },
  };
}

async function writeProducts(path: string, catalog: Catalog): Promise<void> {
  const rows = catalog.products.map((p) => [p.sku, p.name, catalog.categories[p.category]?.code ?? '']);
  await writeRows(path, DEMO_HEADERS.products, rows);
}

async function writeRows(path: string, header: readonly string[], rows: readonly (readonly string[])[]): Promise<void> {
  const file = new CsvFile(path, header);
  for (const row of rows) {
    file.add(row);
    await file.flushIfFull();
  }
  await file.close();
}

/** Generates one contact at a time and appends their rows to the three streamed files. */
class ContactGenerator {
  private readonly takenEmails = new Set<string>();
  private readonly simulator: PurchaseSimulator;
  private readonly now: number;
  private nextOrder = 1;

  constructor(
    private readonly names: NameSources,
    private readonly rng: Rng,
    private readonly catalog: Catalog,
    now: Date,
    private readonly out: ContactFiles,
    private readonly summary: DemoSummary,
  ) {
    this.simulator = new PurchaseSimulator(catalog, rng);
    this.now = now.getTime();
  }

  next(index: number): Identity {
    const externalId = `C${String(index + 1).padStart(6, '0')}`;
    const identity = generateIdentity(this.names, this.rng, this.takenEmails);
    const profile = drawProfilingProfile(this.rng);
    const createdAt = this.createdAt(profile === 'missingProof' || this.rng.chance(LEGACY_SHARE));
    this.out.contacts.add([
      externalId,
      identity.email,
      identity.phone,
      identity.firstName,
      identity.lastName,
      identity.country,
      iso(createdAt),
    ]);
    this.countContact(identity);
    this.writePurchases(externalId, createdAt);
    this.writeConsents(externalId, identity, profile, createdAt);
    return identity;
  }

  /** Legacy contacts were collected before the GDPR, the others over the last four years. */
  private createdAt(legacy: boolean): number {
    const latest = this.now - 2 * DAY;
    const end = legacy ? Math.min(GDPR_START - DAY, latest) : latest;
    return instantBetween(this.rng, end - CONTACT_HISTORY, end);
  }

  private writePurchases(externalId: string, createdAt: number): void {
    const traits = drawBuyerTraits(this.rng, this.catalog);
    const linesBefore = this.summary.purchases;
    if (traits) {
      const start = Math.max(createdAt + MINUTE, this.now - YEAR);
      this.simulator.simulate(traits, start, this.now, (at, lines) => this.writeOrder(externalId, at, lines));
    }
    if (this.summary.purchases > linesBefore) this.summary.breakdown.buyers++;
    else this.summary.breakdown.prospects++;
  }

  private writeOrder(externalId: string, at: number, lines: BasketLine[]): void {
    const orderId = `O${String(this.nextOrder++).padStart(8, '0')}`;
    const purchasedAt = iso(at);
    for (const line of lines) {
      const sku = this.catalog.products[line.product]?.sku as string;
      this.out.purchases.add([orderId, externalId, sku, line.quantity, line.unitPrice, purchasedAt]);
    }
    this.summary.orders++;
    this.summary.purchases += lines.length;
  }

  private writeConsents(externalId: string, identity: Identity, profile: ProfilingProfile, createdAt: number): void {
    const subject = { createdAt, now: this.now, hasEmail: identity.email !== null, hasPhone: identity.phone !== null };
    const marketing = marketingEvents(subject, this.rng);
    const events = [...profilingEvents(profile, subject, this.rng), ...marketing.events].sort((a, b) => a.capturedAt - b.capturedAt);
    for (const event of events) this.out.consents.add(consentRow(externalId, event));
    this.summary.consentEvents += events.length;
    this.countConsents(profile, marketing.states);
  }

  private countContact(identity: Identity): void {
    const b = this.summary.breakdown;
    this.summary.contacts++;
    if (identity.email) b.withEmail++;
    if (identity.phone) b.withPhone++;
    b.countries[identity.country] = (b.countries[identity.country] ?? 0) + 1;
  }

  private countConsents(profile: ProfilingProfile, states: Map<Channel, ChannelState>): void {
    const b = this.summary.breakdown;
    const eligible = profile === 'valid' || profile === 'withdrewThenRegranted';
    b.profiling[profile]++;
    if (eligible) b.profilingEligible++;
    for (const [channel, state] of states) b.channels[channel][state]++;
    const active = (channel: Channel) => states.get(channel) === 'active';
    if (active('sms') && !active('phone')) b.smsWithoutPhone++;
    if (!eligible && CHANNELS.some(active)) b.channelOnly++;
  }
}

function consentRow(externalId: string, e: ConsentEvent): (string | null)[] {
  return [
    externalId,
    e.purpose,
    e.channel,
    e.status,
    iso(e.capturedAt),
    e.source,
    e.method,
    e.noticeVersion,
    e.evidenceRef,
    e.expiresAt === null ? null : iso(e.expiresAt),
  ];
}
