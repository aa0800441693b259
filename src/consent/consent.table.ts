import type { ColumnType, Generated } from 'kysely';

/** 'objected' is written only by the objection right (GDPR art. 21), never imported. */
export type ConsentStatus = 'granted' | 'withdrawn' | 'refused' | 'objected';

export interface PurposeTable {
  code: string;
  label: string;
  requires_channel: boolean;
  description: string | null;
}

export interface ChannelTable {
  code: string;
  label: string;
  contact_field: 'email' | 'phone' | 'mobile' | 'postal_address' | 'device';
}

export interface ConsentMethodTable {
  code: string;
  is_explicit: boolean;
  description: string;
}

export interface ConsentEventTable {
  id: Generated<number>;
  contact_id: number;
  purpose: string;
  channel: string | null;
  status: ConsentStatus;
  captured_at: Date;
  recorded_at: Generated<Date>;
  source: string | null;
  method: string | null;
  notice_version: string | null;
  evidence_ref: string | null;
  expires_at: Date | null;
  import_id: number | null;
  /** an event recorded twice before the ledger's natural key was enforced: the first one's id (kept as evidence, out of the key) */
  duplicate_of: ColumnType<number | null, number | null | undefined, number | null>;
  /** when an erasure emptied the event's free-text proof (source, notice version, evidence reference) */
  proof_scrubbed_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
}
