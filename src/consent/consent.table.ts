import type { Generated } from 'kysely';

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
}
