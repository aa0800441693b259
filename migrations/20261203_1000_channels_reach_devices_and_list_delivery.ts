import { type Kysely, sql } from 'kysely';
import { parsePhoneNumberWithError } from 'libphonenumber-js/max';

// Frozen in time: this file never imports application code (the line-type rule below is
// a copy of the one the application applied when this migration was written).

const ARCEP_FICTION_MOBILE = /^\+3363998\d{4}$/;

function lineType(e164: string): string | null {
  if (ARCEP_FICTION_MOBILE.test(e164)) return 'MOBILE';
  try {
    return parsePhoneNumberWithError(e164).getType() ?? null;
  } catch {
    return null;
  }
}

export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    -- SMS reaches mobile numbers only: its contact field says so, and a number's line type
    -- (libphonenumber's MOBILE, FIXED_LINE, FIXED_LINE_OR_MOBILE, VOIP, ...) is kept beside it.
    alter table channels drop constraint channels_contact_field_check;
    alter table channels add constraint channels_contact_field_check
      check (contact_field in ('email', 'phone', 'mobile', 'postal_address', 'device'));
    update channels set contact_field = 'mobile' where code = 'sms';
    alter table contact_personal_data add column phone_line_type text;

    -- A list counts towards contact pressure while it is being delivered and once delivered;
    -- a list whose response never completed is 'undelivered' and its members are released.
    -- Lists served before this migration were counted as delivered, and stay so.
    alter table target_exports
      add column delivery text not null default 'delivered' check (delivery in ('pending', 'delivered', 'undelivered')),
      add column delivery_settled_at timestamptz;
    alter table target_exports alter column delivery drop default;
    alter table target_export_members add column released boolean not null default false;
    drop index target_export_members_pressure;
    create index target_export_members_pressure on target_export_members (contact_id, exported_at) where not is_holdout and not released;
    create index target_exports_pending on target_exports (created_at) where delivery = 'pending';
  `.execute(db);

  let after = 0;
  for (;;) {
    const { rows } = await sql<{ contact_id: string; phone: string }>`
      SELECT contact_id, phone FROM contact_personal_data
      WHERE phone IS NOT NULL AND contact_id > ${after} ORDER BY contact_id LIMIT 20000`.execute(db);
    if (rows.length === 0) break;
    const typed = JSON.stringify(rows.map((row) => ({ id: Number(row.contact_id), type: lineType(row.phone) })));
    await sql`
      UPDATE contact_personal_data d SET phone_line_type = t.type
      FROM jsonb_to_recordset(${typed}::jsonb) AS t(id bigint, type text)
      WHERE d.contact_id = t.id`.execute(db);
    after = Number(rows[rows.length - 1]!.contact_id);
  }
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`
    drop index target_exports_pending;
    drop index target_export_members_pressure;
    create index target_export_members_pressure on target_export_members (contact_id, exported_at) where not is_holdout;
    alter table target_export_members drop column released;
    alter table target_exports drop column delivery_settled_at, drop column delivery;
    alter table contact_personal_data drop column phone_line_type;
    update channels set contact_field = 'phone' where code = 'sms';
    alter table channels drop constraint channels_contact_field_check;
    alter table channels add constraint channels_contact_field_check
      check (contact_field in ('email', 'phone', 'postal_address', 'device'));
  `.execute(db);
}
