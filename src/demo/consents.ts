import type { Rng } from './random.ts';
import { DAY, GDPR_START, instantBetween, soonAfter, YEAR } from './time.ts';

export const CHANNELS = ['email', 'sms', 'phone', 'postal', 'push'] as const;
export type Channel = (typeof CHANNELS)[number];

/** How a contact's profiling consent ends up; exactly one per contact. */
export const PROFILING_PROFILES = [
  'valid',
  'neverConsented',
  'refused',
  'withdrew',
  'withdrewThenRegranted',
  'invalidMethod',
  'missingProof',
  'expired',
] as const;
export type ProfilingProfile = (typeof PROFILING_PROFILES)[number];

/** The state a channel consent ends in: only 'active' allows contacting the person. */
export type ChannelState = 'active' | 'withdrawn' | 'invalid';

export interface ConsentEvent {
  purpose: 'profiling' | 'direct_marketing';
  channel: Channel | null;
  status: 'granted' | 'withdrawn' | 'refused';
  capturedAt: number;
  source: string | null;
  method: string | null;
  noticeVersion: string | null;
  evidenceRef: string | null;
  expiresAt: number | null;
}

export interface ConsentSubject {
  createdAt: number;
  now: number;
  hasEmail: boolean;
  hasPhone: boolean;
}

const PROFILE_WEIGHTS: Record<ProfilingProfile, number> = {
  valid: 0.73,
  neverConsented: 0.06,
  refused: 0.035,
  withdrew: 0.04,
  withdrewThenRegranted: 0.015,
  invalidMethod: 0.045,
  missingProof: 0.045,
  expired: 0.03,
};

/** A consent method, how often it is used, and the touch points that produce it. */
interface MethodChoice {
  method: string;
  weight: number;
  sources: readonly string[];
}

const EXPLICIT: readonly MethodChoice[] = [
  { method: 'explicit_checkbox', weight: 0.5, sources: ['web_form', 'checkout', 'mobile_app'] },
  { method: 'double_opt_in', weight: 0.3, sources: ['web_form', 'mobile_app'] },
  { method: 'signed_form', weight: 0.12, sources: ['paper_form', 'store'] },
  { method: 'recorded_verbal', weight: 0.08, sources: ['call_centre'] },
];
/** Push notifications can only be accepted in the app. */
const EXPLICIT_PUSH: readonly MethodChoice[] = [
  { method: 'explicit_checkbox', weight: 0.8, sources: ['mobile_app'] },
  { method: 'double_opt_in', weight: 0.2, sources: ['mobile_app'] },
];
const NEVER_VALID: readonly MethodChoice[] = [
  { method: 'pre_ticked', weight: 0.5, sources: ['web_form', 'checkout'] },
  { method: 'implied', weight: 0.25, sources: ['store', 'checkout', 'web_form'] },
  { method: 'bundled', weight: 0.25, sources: ['checkout'] },
];
const WITHDRAWAL_SOURCES = ['web_form', 'mobile_app', 'call_centre', 'store'];
const WITHDRAWAL_WEIGHTS = [0.55, 0.2, 0.2, 0.05];

const CONSENT_VALIDITY = 395 * DAY;

export function drawProfilingProfile(rng: Rng): ProfilingProfile {
  return PROFILING_PROFILES[rng.weightedIndex(PROFILING_PROFILES.map((p) => PROFILE_WEIGHTS[p]))] as ProfilingProfile;
}

/** The privacy notice in force: a new version every two years since the GDPR. */
function noticeVersion(at: number): string {
  return `privacy-v${1 + Math.max(0, Math.floor((at - GDPR_START) / (2 * YEAR)))}`;
}

type Target = Pick<ConsentEvent, 'purpose' | 'channel'>;

// Fields are listed rather than spread from `target`: spreading made event creation ~10x slower in V8.
function withProof(rng: Rng, target: Target, status: ConsentEvent['status'], at: number, choices: readonly MethodChoice[]): ConsentEvent {
  const choice = choices[rng.weightedIndex(choices.map((c) => c.weight))] as MethodChoice;
  return {
    purpose: target.purpose,
    channel: target.channel,
    status,
    capturedAt: at,
    source: rng.pick(choice.sources),
    method: choice.method,
    noticeVersion: noticeVersion(at),
    evidenceRef: `ev-${rng.hex(16)}`,
    expiresAt: null,
  };
}

const explicitGrant = (rng: Rng, target: Target, at: number) =>
  withProof(rng, target, 'granted', at, target.channel === 'push' ? EXPLICIT_PUSH : EXPLICIT);
const invalidGrant = (rng: Rng, target: Target, at: number) => withProof(rng, target, 'granted', at, NEVER_VALID);
const refusal = (rng: Rng, target: Target, at: number) => withProof(rng, target, 'refused', at, EXPLICIT);

/** A withdrawal needs no consent method, but its channel and evidence are recorded. */
function withdrawal(rng: Rng, target: Target, at: number): ConsentEvent {
  return {
    purpose: target.purpose,
    channel: target.channel,
    status: 'withdrawn',
    capturedAt: at,
    source: WITHDRAWAL_SOURCES[rng.weightedIndex(WITHDRAWAL_WEIGHTS)] as string,
    method: null,
    noticeVersion: noticeVersion(at),
    evidenceRef: `ev-${rng.hex(16)}`,
    expiresAt: null,
  };
}

/** A pre-GDPR record: a date, but no means of proof. */
function unprovenGrant(rng: Rng, target: Target, subject: ConsentSubject): ConsentEvent {
  return {
    purpose: target.purpose,
    channel: target.channel,
    status: 'granted',
    capturedAt: instantBetween(rng, subject.createdAt, Math.min(GDPR_START, subject.now)),
    source: null,
    method: null,
    noticeVersion: null,
    evidenceRef: null,
    expiresAt: null,
  };
}

/**
 * When a consent with proof was first captured: often in the sign-up session,
 * otherwise later (legacy contacts re-asked after the GDPR). `roomAfter` keeps
 * that share of the remaining time free for later changes of mind.
 */
function firstCapture(rng: Rng, subject: ConsentSubject, roomAfter = 0): number {
  const base = Math.max(subject.createdAt, GDPR_START);
  if (subject.createdAt >= GDPR_START && rng.chance(0.6)) return soonAfter(rng, base, subject.now);
  return instantBetween(rng, base, base + (subject.now - base) * (1 - roomAfter));
}

function laterThan(rng: Rng, after: number, now: number, roomAfter = 0): number {
  return instantBetween(rng, after, after + (now - after) * (1 - roomAfter));
}

export function profilingEvents(profile: ProfilingProfile, subject: ConsentSubject, rng: Rng): ConsentEvent[] {
  const target: Target = { purpose: 'profiling', channel: null };
  const { now } = subject;
  switch (profile) {
    case 'neverConsented':
      return [];
    case 'refused':
      return [refusal(rng, target, firstCapture(rng, subject))];
    case 'invalidMethod':
      return [invalidGrant(rng, target, firstCapture(rng, subject))];
    case 'missingProof':
      return [unprovenGrant(rng, target, subject)];
    case 'valid': {
      const grant = explicitGrant(rng, target, firstCapture(rng, subject));
      if (rng.chance(0.08)) grant.expiresAt = Math.max(grant.capturedAt + 3 * YEAR, now + 30 * DAY);
      return [grant];
    }
    case 'expired':
      return [expiredGrant(rng, target, subject)];
    case 'withdrew': {
      const grant = explicitGrant(rng, target, firstCapture(rng, subject, 0.4));
      return [grant, withdrawal(rng, target, laterThan(rng, grant.capturedAt, now))];
    }
    case 'withdrewThenRegranted': {
      const grant = explicitGrant(rng, target, firstCapture(rng, subject, 0.5));
      const withdrawn = withdrawal(rng, target, laterThan(rng, grant.capturedAt, now, 0.4));
      return [grant, withdrawn, explicitGrant(rng, target, laterThan(rng, withdrawn.capturedAt, now))];
    }
  }
}

/** A consent given for a limited time (13 months) that has run out. */
function expiredGrant(rng: Rng, target: Target, subject: ConsentSubject): ConsentEvent {
  const base = Math.max(subject.createdAt, GDPR_START);
  const latestStart = subject.now - CONSENT_VALIDITY - DAY;
  const at = latestStart > base ? instantBetween(rng, base, latestStart) : firstCapture(rng, subject, 0.5);
  const grant = explicitGrant(rng, target, at);
  grant.expiresAt = latestStart > base ? at + CONSENT_VALIDITY : laterThan(rng, at, subject.now);
  return grant;
}

/** Probability that a contact opted in to each channel, given what the contact holds. */
function optInChance(channel: Channel, subject: ConsentSubject, optedIn: ReadonlySet<Channel>): number {
  switch (channel) {
    case 'email':
      return subject.hasEmail ? 0.6 : 0;
    case 'sms':
      return subject.hasPhone ? 0.35 : 0;
    // calls are more intrusive: mostly people who already accept SMS
    case 'phone':
      return subject.hasPhone ? (optedIn.has('sms') ? 0.3 : 0.07) : 0;
    case 'postal':
      return 0.1;
    case 'push':
      return 0.1;
  }
}

/**
 * Direct-marketing consents, channel by channel. Each event list ends in the
 * returned state: a few newsletter boxes were pre-ticked or collected before
 * the GDPR without proof, and some people later unsubscribe.
 */
export function marketingEvents(subject: ConsentSubject, rng: Rng): { events: ConsentEvent[]; states: Map<Channel, ChannelState> } {
  const events: ConsentEvent[] = [];
  const states = new Map<Channel, ChannelState>();
  for (const channel of CHANNELS) {
    if (!rng.chance(optInChance(channel, subject, new Set(states.keys())))) continue;
    const target: Target = { purpose: 'direct_marketing', channel };
    if (channel === 'email' && subject.createdAt < GDPR_START && rng.chance(0.35)) {
      events.push(unprovenGrant(rng, target, subject));
      states.set(channel, 'invalid');
    } else if (rng.chance(channel === 'email' ? 0.04 : 0.02)) {
      events.push(invalidGrant(rng, target, firstCapture(rng, subject)));
      states.set(channel, 'invalid');
    } else if (rng.chance(channel === 'email' ? 0.12 : 0.08)) {
      const grant = explicitGrant(rng, target, firstCapture(rng, subject, 0.4));
      events.push(grant, withdrawal(rng, target, laterThan(rng, grant.capturedAt, subject.now)));
      states.set(channel, 'withdrawn');
    } else {
      events.push(explicitGrant(rng, target, firstCapture(rng, subject)));
      states.set(channel, 'active');
    }
  }
  return { events, states };
}
