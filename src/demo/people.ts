import type { Faker } from '@faker-js/faker';
import type { Rng } from './random.ts';

export interface Identity {
  firstName: string;
  lastName: string;
  country: string;
  email: string | null;
  phone: string | null;
  /** index of the phone number in the fiction-number space, -1 without phone */
  phoneKey: number;
}

export interface NameSources {
  fr: Faker;
  en: Faker;
}

const COUNTRIES = ['FR', 'BE', 'CH', 'LU'] as const;
const COUNTRY_WEIGHTS = [0.85, 0.07, 0.05, 0.03];
const EMAIL_DOMAINS = ['example.com', 'example.org', 'example.net'] as const;
const EMAIL_DOMAIN_WEIGHTS = [0.6, 0.25, 0.15];

/**
 * ARCEP numbers reserved for fiction, as the 5 leading digits of the national
 * significant number (06 39 98 xx xx, 01 99 00 xx xx, ...). Suffixes below
 * CONTACT_SUFFIXES are handed to contacts; the rest are kept for opposition
 * entries that must not match anyone in the base.
 */
const FICTION_PREFIXES = ['63998', '19900', '26191', '35301', '46571', '53649'] as const;
const FICTION_PREFIX_WEIGHTS = [0.55, 0.09, 0.09, 0.09, 0.09, 0.09];
export const SUFFIXES_PER_PREFIX = 10_000;
export const CONTACT_SUFFIXES = 9_000;
export const PHONE_KEY_SPACE = FICTION_PREFIXES.length * SUFFIXES_PER_PREFIX;

const PHONE_FORMATS = [
  (nsn: string) => `+33 ${nsn[0]} ${pairs(nsn.slice(1))}`,
  (nsn: string) => `0${nsn[0]} ${pairs(nsn.slice(1))}`,
  (nsn: string) => `0${nsn}`,
  (nsn: string) => `+33${nsn}`,
];
const CONTACT_PHONE_FORMAT_WEIGHTS = [0.3, 0.4, 0.2, 0.1];

function pairs(digits: string): string {
  return digits.match(/../g)?.join(' ') ?? digits;
}

/** Formats a fiction number the way people, CRMs or published lists write it. */
export function formatPhone(phoneKey: number, rng: Rng, formatWeights: readonly number[]): string {
  const prefix = FICTION_PREFIXES[Math.floor(phoneKey / SUFFIXES_PER_PREFIX)] as string;
  const nsn = prefix + String(phoneKey % SUFFIXES_PER_PREFIX).padStart(4, '0');
  const format = PHONE_FORMATS[rng.weightedIndex(formatWeights)] as (nsn: string) => string;
  return format(nsn);
}

function contactPhoneKey(rng: Rng): number {
  return rng.weightedIndex(FICTION_PREFIX_WEIGHTS) * SUFFIXES_PER_PREFIX + rng.int(CONTACT_SUFFIXES);
}

function asciiWord(name: string): string {
  const folded = name
    .normalize('NFD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z]/g, '');
  return folded || 'contact';
}

function emailLocalPart(first: string, last: string, rng: Rng): string {
  const f = asciiWord(first);
  const l = asciiWord(last);
  switch (rng.weightedIndex([0.4, 0.2, 0.15, 0.1, 0.1, 0.05])) {
    case 0:
      return `${f}.${l}`;
    case 1:
      return `${f[0]}${l}`;
    case 2:
      return `${f}${l}${10 + rng.int(90)}`;
    case 3:
      return `${f}_${l}`;
    case 4:
      return `${l}.${f}`;
    default:
      return `${f}${String((60 + rng.int(46)) % 100).padStart(2, '0')}`; // birth year
  }
}

/** Unique across the base: a taken address gets a random number appended, longer at each retry. */
function uniqueEmail(first: string, last: string, rng: Rng, taken: Set<string>): string {
  const local = emailLocalPart(first, last, rng);
  const domain = EMAIL_DOMAINS[rng.weightedIndex(EMAIL_DOMAIN_WEIGHTS)] as string;
  let email = `${local}@${domain}`;
  for (let digits = 1; taken.has(email); digits++) {
    email = `${local}${rng.int(10 ** Math.min(digits, 9))}@${domain}`;
  }
  taken.add(email);
  return email;
}

export function generateIdentity(names: NameSources, rng: Rng, takenEmails: Set<string>): Identity {
  const country = COUNTRIES[rng.weightedIndex(COUNTRY_WEIGHTS)] as string;
  const faker = rng.chance(country === 'FR' ? 0.88 : 0.75) ? names.fr : names.en;
  const firstName = faker.person.firstName();
  const lastName = faker.person.lastName();
  const email = rng.chance(0.9) ? uniqueEmail(firstName, lastName, rng, takenEmails) : null;
  const phoneKey = rng.chance(0.7) ? contactPhoneKey(rng) : -1;
  const phone = phoneKey < 0 ? null : formatPhone(phoneKey, rng, CONTACT_PHONE_FORMAT_WEIGHTS);
  return { firstName, lastName, country, email, phone, phoneKey };
}
