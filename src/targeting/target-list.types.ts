import type { ConsentPolicy, TargetingPolicy } from '../config.ts';
import type { ScoreReason } from '../scores/score.table.ts';
import type { ListSize } from './list-size.ts';

/* What a target list is asked with and what it is: the shapes the service, the API and the CLI share. */

export interface TargetListRequest {
  sku: string;
  channel: string;
  size: ListSize;
  /** percent of the list withheld at random as a control group (0 for none) */
  holdoutPercent: number;
  actor: string;
  apiKeyId: number | null;
}

export interface TargetMember {
  position: number;
  externalId: string;
  /** the channel's contact field: an email address or a phone number */
  contact: string;
  score: number;
  percentile: number;
  rank: number;
  reasons: ScoreReason[];
  /** the consent ledger events that make the person eligible: profiling, then the channel */
  consentEventIds: number[];
}

/** How many people each rule kept, among the scored people examined in rank order. */
export interface TargetFunnel {
  /** everyone in the product's live score set when it was built (later withdrawals and erasures remove scores) */
  scored: number;
  /** the best-ranked scored people looked at before the list was full */
  examined: number;
  consentedForChannel: number;
  notOpposed: number;
  underPressureCap: number;
  /** the list: members to contact plus the holdout */
  selected: number;
  holdout: number;
  returned: number;
}

/** Why a list is shorter than asked: set when a top N or an expectedBuyers target was not reached, or the size cap cut the list. */
export interface Shortfall {
  /** what the size asked for (members for top, summed probabilities for expectedBuyers), null for percentile and minScore */
  asked: number | null;
  /** what the list reached: members, or the summed purchase probabilities of everyone selected (holdout included) */
  reached: number;
  of: 'members' | 'expectedBuyers';
  reason: string;
}

/** What a list for these parameters is, or would be: the same for a list and for its preview. */
export interface TargetSelection {
  product: { sku: string; name: string };
  model: { id: number; version: number; versionId: number; algorithm: string; horizonDays: number; scoredAt: string };
  channel: string;
  params: Record<string, unknown>;
  funnel: TargetFunnel;
  /** summed purchase probabilities of the members to contact (for a preview with a holdout: expected over the random draw) */
  expectedBuyers: number;
  /** the lowest score on the list (the last member's), null for an empty list */
  scoreThreshold: number | null;
  shortfall: Shortfall | null;
}

export interface TargetList extends TargetSelection {
  recorded: true;
  exportId: string;
  createdAt: string;
  members: TargetMember[];
  holdout: TargetMember[];
  holdoutSeed: string | null;
  manifestHash: string;
}

export interface TargetPreview extends TargetSelection {
  recorded: false;
  note: string;
}

export const PREVIEW_NOTE =
  'a preview: no list was recorded, no manifest written and no contact pressure used; the same parameters without preview make the list';

export interface TargetListPolicies {
  consent: ConsentPolicy;
  targeting: TargetingPolicy;
}
