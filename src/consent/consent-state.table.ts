/** The person's consent state: the latest event over all the person's records (see migrations 1600). */
export interface ConsentStateTable {
  /** the person (the id of their first record) */
  contact_id: number;
  /** the record whose ledger event decides */
  record_id: number;
  purpose: string;
  /** the channel, or '' for a purpose without channel (and for an all-channel objection) */
  channel_key: string;
  event_id: number;
  status: 'granted' | 'withdrawn' | 'refused' | 'objected';
  captured_at: Date;
  expires_at: Date | null;
  /** granted, explicit method, proof of means: see consent_event_counts() in the migrations */
  counts: boolean;
}
