import { resolve } from 'node:path';
import { z } from 'zod';
import { DEFAULT_IDENTITY_POLICY, type IdentityPolicy } from './identities/resolution.repository.ts';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const environmentSchema = z.object({
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL')
    .optional(),
  CIBLE_DATA_DIR: z.string().min(1).default('.cible'),
  LOG_LEVEL: z.enum(LOG_LEVELS).optional(),
  PORT: z.coerce.number().int().min(1).max(65535).default(3000),
  HOST: z.string().min(1).default('127.0.0.1'),
  CIBLE_DEFAULT_PHONE_COUNTRY: z
    .string()
    .regex(/^[A-Z]{2}$/, 'must be an ISO 3166-1 alpha-2 country code such as FR')
    .default('FR'),
  CIBLE_OPPOSITION_MAX_AGE_DAYS: z.coerce.number().int().min(1).max(365).default(30),
  CIBLE_FRESH_LIST_CHANNELS: z
    .string()
    .regex(/^[a-z_]+(,[a-z_]+)*$/, 'must be channel codes separated by commas, e.g. phone,sms')
    .default('phone'),
  CIBLE_TF_BACKEND: z.enum(['auto', 'tensorflow', 'wasm', 'cpu']).default('auto'),
  CIBLE_API_RATE_LIMIT: z.coerce.number().int().min(1).default(600),
  CIBLE_API_BODY_LIMIT_BYTES: z.coerce.number().int().min(1024).default(4_194_304),
  CIBLE_PRESSURE_MAX_LISTS: z.coerce.number().int().min(1).default(3),
  CIBLE_PRESSURE_WINDOW_DAYS: z.coerce.number().int().min(1).max(365).default(7),
  CIBLE_TARGETS_MAX_MEMBERS: z.coerce.number().int().min(1).default(200_000),
  CIBLE_TARGETS_DELIVERY_TIMEOUT_SECONDS: z.coerce.number().int().min(10).max(86_400).default(900),
  CIBLE_PIPELINE_CRON: z
    .string()
    .regex(/^\S+( \S+){4}$/, 'must be a five-field cron expression such as "0 2 * * *"')
    .default('0 2 * * *'),
  CIBLE_PIPELINE_TIMEZONE: z.string().refine(isTimeZone, 'must be an IANA time zone such as Europe/Paris').default('Europe/Paris'),
  CIBLE_CONSENT_SWEEP_MINUTES: z.coerce.number().int().min(1).max(1440).default(15),
  CIBLE_JOB_TIMEOUT_SECONDS: z.coerce.number().int().min(5).default(1800),
  CIBLE_SCORE_SHARDS: z.coerce.number().int().min(1).max(64).default(2),
  CIBLE_RUN_STALE_SECONDS: z.coerce.number().int().min(30).default(600),
  CIBLE_WORKER_ABSENT_SECONDS: z.coerce.number().int().min(5).max(86_400).default(60),
  CIBLE_TOMBSTONE_SECRET: z.string().min(32, 'must be at least 32 characters (e.g. openssl rand -hex 32)').optional(),
  CIBLE_TOMBSTONE_PREVIOUS_SECRETS: z
    .string()
    .regex(/^[^,]{32,}(,[^,]{32,})*$/, 'must be earlier tombstone secrets (32 characters or more each) separated by commas')
    .optional(),
  CIBLE_IDENTITY_GENERIC_EMAILS: z
    .string()
    .regex(
      /^[a-z0-9._%+-]+(,[a-z0-9._%+-]+)*$/,
      'must be lower-case email local parts (what comes before the @) separated by commas, e.g. contact,info,hello',
    )
    .optional(),
  CIBLE_IDENTITY_LINK_ON_IMPORT: z.enum(['true', 'false'], { message: 'must be true or false' }).default('true'),
  CIBLE_SPECIAL_CATEGORIES: z
    .string()
    .regex(/^[^,]+(,[^,]+)*$/, 'must be product categories separated by commas')
    .optional(),
});

export type DatabaseTarget = { kind: 'postgres'; url: string } | { kind: 'pglite'; dataDir: string };

export interface Config {
  database: DatabaseTarget;
  dataDir: string;
  /** Unset: each entry point picks its default (the CLI warns only, the server logs requests). */
  logLevel: (typeof LOG_LEVELS)[number] | undefined;
  port: number;
  host: string;
  /** Country used to read phone numbers written without an international prefix. */
  defaultPhoneCountry: string;
  consentPolicy: ConsentPolicy;
  /** TensorFlow.js backend: auto = the native binding when installed, else the measured fastest */
  tfBackend: 'auto' | 'tensorflow' | 'wasm' | 'cpu';
  /** product categories whose purchases are special-category data: never a feature, never a target (added to the built-in list) */
  specialCategories: string[];
  api: ApiSettings;
  targeting: TargetingPolicy;
  jobs: JobSettings;
  tombstones: TombstoneSecrets;
  /** how contact records are linked into persons: passed to every contacts import and to `cible identities` */
  identityPolicy: IdentityPolicy;
}

/**
 * The secret erasure tombstones are keyed with (HMAC-SHA-256): never stored in the database.
 * Unset: a secret generated once in `secretFile` (mode 0600) under the data directory.
 */
export interface TombstoneSecrets {
  secret: string | undefined;
  /** secrets used before a rotation: tombstones made with them are still recognised */
  previousSecrets: string[];
  secretFile: string;
}

export interface JobSettings {
  /** when the nightly run is enqueued: a five-field cron expression read in `timeZone` */
  cron: string;
  timeZone: string;
  /** how often the light consent job runs */
  consentSweepMinutes: number;
  /** a job still active after this long is presumed dead (its worker killed) and retried */
  jobTimeoutSeconds: number;
  /** scoring jobs a queued run fans out into (shards of the population) */
  scoreShards: number;
  /** an inline run whose heartbeat is older than this is presumed dead */
  staleRunSeconds: number;
  /**
   * a worker whose heartbeat is older than this is not live; a queued run that has had no live
   * worker for longer is reported by `cible runs list`, /ready and /metrics
   */
  workerAbsentSeconds: number;
}

export const DEFAULT_JOB_SETTINGS: JobSettings = {
  cron: '0 2 * * *',
  timeZone: 'Europe/Paris',
  consentSweepMinutes: 15,
  jobTimeoutSeconds: 1800,
  scoreShards: 2,
  staleRunSeconds: 600,
  workerAbsentSeconds: 60,
};

/** An IANA time zone name this runtime knows, such as Europe/Paris. */
export function isTimeZone(value: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: value });
    return true;
  } catch {
    return false;
  }
}

export interface ApiSettings {
  /** requests per minute per API key */
  rateLimitPerMinute: number;
  bodyLimitBytes: number;
}

export interface TargetingPolicy {
  /** contact pressure: a contact appears in at most this many lists (holdouts excluded)... */
  pressureMaxLists: number;
  /** ...per rolling window of this many days, across products */
  pressureWindowDays: number;
  /** the largest list one request may ask for */
  maxMembers: number;
  /**
   * a list being delivered counts towards pressure; one still undelivered after this long
   * (its process died mid-response) is marked undelivered and its members released
   */
  deliveryTimeoutSeconds: number;
}

export const DEFAULT_TARGETING_POLICY: TargetingPolicy = {
  pressureMaxLists: 3,
  pressureWindowDays: 7,
  maxMembers: 200_000,
  deliveryTimeoutSeconds: 900,
};

export interface ConsentPolicy {
  /** an opposition list for a channel below must be younger than this, or the channel is closed */
  oppositionMaxAgeDays: number;
  /** channels that may only be used with a fresh opposition list (Bloctel asks 30 days for calls) */
  freshListChannels: string[];
}

export const DEFAULT_CONSENT_POLICY: ConsentPolicy = { oppositionMaxAgeDays: 30, freshListChannels: ['phone'] };

export class ConfigError extends Error {}

/** Parses the environment once; every default makes the embedded mode work with no configuration. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const relevant = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined && value !== ''));
  const parsed = environmentSchema.safeParse(relevant);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(`invalid configuration in environment variables: ${problems.join('; ')}`);
  }
  const values = parsed.data;
  const dataDir = resolve(values.CIBLE_DATA_DIR);
  return {
    database: values.DATABASE_URL
      ? { kind: 'postgres', url: values.DATABASE_URL }
      : { kind: 'pglite', dataDir: resolve(dataDir, 'pgdata') },
    dataDir,
    logLevel: values.LOG_LEVEL,
    port: values.PORT,
    host: values.HOST,
    defaultPhoneCountry: values.CIBLE_DEFAULT_PHONE_COUNTRY,
    consentPolicy: {
      oppositionMaxAgeDays: values.CIBLE_OPPOSITION_MAX_AGE_DAYS,
      freshListChannels: values.CIBLE_FRESH_LIST_CHANNELS.split(','),
    },
    tfBackend: values.CIBLE_TF_BACKEND,
    api: { rateLimitPerMinute: values.CIBLE_API_RATE_LIMIT, bodyLimitBytes: values.CIBLE_API_BODY_LIMIT_BYTES },
    targeting: {
      pressureMaxLists: values.CIBLE_PRESSURE_MAX_LISTS,
      pressureWindowDays: values.CIBLE_PRESSURE_WINDOW_DAYS,
      maxMembers: values.CIBLE_TARGETS_MAX_MEMBERS,
      deliveryTimeoutSeconds: values.CIBLE_TARGETS_DELIVERY_TIMEOUT_SECONDS,
    },
    jobs: {
      cron: values.CIBLE_PIPELINE_CRON,
      timeZone: values.CIBLE_PIPELINE_TIMEZONE,
      consentSweepMinutes: values.CIBLE_CONSENT_SWEEP_MINUTES,
      jobTimeoutSeconds: values.CIBLE_JOB_TIMEOUT_SECONDS,
      scoreShards: values.CIBLE_SCORE_SHARDS,
      staleRunSeconds: values.CIBLE_RUN_STALE_SECONDS,
      workerAbsentSeconds: values.CIBLE_WORKER_ABSENT_SECONDS,
    },
    tombstones: {
      secret: values.CIBLE_TOMBSTONE_SECRET,
      previousSecrets: values.CIBLE_TOMBSTONE_PREVIOUS_SECRETS?.split(',') ?? [],
      secretFile: resolve(dataDir, 'tombstone.secret'),
    },
    identityPolicy: {
      ...DEFAULT_IDENTITY_POLICY,
      genericEmailLocalParts: values.CIBLE_IDENTITY_GENERIC_EMAILS?.split(',') ?? DEFAULT_IDENTITY_POLICY.genericEmailLocalParts,
      linkOnImport: values.CIBLE_IDENTITY_LINK_ON_IMPORT === 'true',
    },
    specialCategories: (values.CIBLE_SPECIAL_CATEGORIES ?? '')
      .split(',')
      .map((c) => c.trim().toLowerCase())
      .filter(Boolean),
  };
}
