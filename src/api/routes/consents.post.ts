import { type OpenAPIHono, z } from '@hono/zod-openapi';
import { apiKeyActor } from '../../auth/actor.ts';
import {
  CONSENT_FIELD_LIMITS,
  type ConsentEventProblem,
  InvalidConsentEventsError,
  MAX_CONSENT_EVENTS,
  RECORDABLE_STATUSES,
  recordConsents,
} from '../../consent/consent-recording.service.ts';
import { tombstoneKeys } from '../../rights/tombstone-keys.ts';
import type { AppEnv } from '../api-env.ts';
import { ApiError, problemResponses, validationError } from '../problem.ts';
import { securedRoute } from '../secured-route.ts';

const Instant = (description: string) =>
  z.iso
    .datetime({ offset: true, error: 'must be an ISO 8601 date-time with an offset, e.g. 2026-03-31T14:05:00+02:00' })
    .openapi({ description, example: '2026-03-31T14:05:00+02:00' });

const OptionalText = (max: number, description: string, example: string) =>
  z.string().max(max).nullable().optional().openapi({ description, example });

export const ConsentEventSchema = z
  .strictObject({
    externalId: z
      .string()
      .min(1)
      .max(CONSENT_FIELD_LIMITS.externalId)
      .openapi({ description: "the contact's external id; the contact must be imported first", example: 'C-1042' }),
    purpose: z
      .string()
      .min(1)
      .max(CONSENT_FIELD_LIMITS.purpose)
      .openapi({ description: 'a purpose code, e.g. profiling or direct_marketing', example: 'direct_marketing' }),
    channel: OptionalText(
      CONSENT_FIELD_LIMITS.channel,
      'a channel code: required for a per-channel purpose (direct_marketing), absent otherwise',
      'sms',
    ),
    status: z.enum(RECORDABLE_STATUSES),
    capturedAt: Instant('when the person gave (or withdrew, or refused) consent; not in the future'),
    source: OptionalText(
      CONSENT_FIELD_LIMITS.source,
      'where it was collected: without it the event is kept but never counts as consent',
      'web:account-form',
    ),
    method: OptionalText(
      CONSENT_FIELD_LIMITS.method,
      'a consent method code; a non-explicit one (pre_ticked, implied, bundled) is kept but never counts',
      'double_opt_in',
    ),
    noticeVersion: OptionalText(CONSENT_FIELD_LIMITS.noticeVersion, 'the version of the notice shown', 'notice-v3'),
    evidenceRef: OptionalText(CONSENT_FIELD_LIMITS.evidenceRef, 'a reference to the proof (form submission, recording)', 'form-8812'),
    expiresAt: Instant('when the consent lapses; after capturedAt').nullable().optional(),
  })
  .openapi('ConsentEvent');

export const ConsentBatchSchema = z
  .strictObject({ consents: z.array(ConsentEventSchema).min(1).max(MAX_CONSENT_EVENTS) })
  .openapi('ConsentBatch');

export const RecordConsentsRequestSchema = z.union([ConsentEventSchema, ConsentBatchSchema]).openapi('RecordConsentsRequest');

export const ConsentsRecordedSchema = z
  .object({
    recorded: z.number().int().openapi({ description: 'events written to the ledger' }),
    alreadyRecorded: z
      .number()
      .int()
      .openapi({ description: 'events identical to one already in the ledger (a retried request): not written again' }),
    eventIds: z.array(z.number().int()).openapi({ description: 'the ledger event id of each event given, in the order given' }),
  })
  .openapi('ConsentsRecorded');

export type ConsentsRecordedResponse = z.infer<typeof ConsentsRecordedSchema>;

const route = securedRoute(['dpo'], {
  method: 'post',
  path: '/v1/consents',
  tags: ['consents'],
  summary: 'Record consent events: one, or a batch, all or nothing',
  description:
    `One event, or \`{ "consents": [...] }\` with at most ${MAX_CONSENT_EVENTS} events, checked with the rules of the CSV import. ` +
    'Any invalid event refuses the whole request and nothing is written; `errors` lists every problem, e.g. `body.consents[3].channel`. ' +
    'The consent state follows in the same transaction.',
  request: { body: { required: true, content: { 'application/json': { schema: RecordConsentsRequestSchema } } } },
  responses: {
    201: { description: 'recorded', content: { 'application/json': { schema: ConsentsRecordedSchema } } },
    ...problemResponses(400, 413, 415),
  },
});

/**
 * Validation failures with the paths of the shape the caller meant: the union would only say
 * "invalid input" for the whole body, so the body is checked again against the one intended.
 */
function consentsBodyHook(result: { target: string } & ({ success: true } | { success: false; error: z.ZodError })): undefined {
  if (result.success) return undefined;
  // the validator hands the hook the body it read, also on failure
  const { data } = result as { data?: unknown };
  const intended = typeof data === 'object' && data !== null && 'consents' in data ? ConsentBatchSchema : ConsentEventSchema;
  const again = intended.safeParse(data);
  throw validationError('body', again.success ? result.error.issues : again.error.issues);
}

const DETAIL_PROBLEMS = 5;

function consentsProblem(error: unknown, batch: boolean): never {
  if (!(error instanceof InvalidConsentEventsError)) throw error;
  const whereOf = ({ index, field }: ConsentEventProblem) => {
    if (!batch) return field === 'consents' ? 'body' : `body.${field}`;
    return index === null ? 'body.consents' : `body.consents[${index}].${field}`;
  };
  const errors = error.problems.map((problem) => ({ where: whereOf(problem), problem: problem.problem }));
  const shown = errors.slice(0, DETAIL_PROBLEMS).map((e) => `${e.where}: ${e.problem}`);
  const more = errors.length > DETAIL_PROBLEMS ? `; and ${errors.length - DETAIL_PROBLEMS} more (see errors)` : '';
  throw new ApiError(400, 'Bad request', `nothing was recorded: ${shown.join('; ')}${more}`, errors);
}

export function registerRecordConsents(app: OpenAPIHono<AppEnv>): void {
  app.openapi(
    route,
    async (c) => {
      const body = c.req.valid('json');
      const batch = 'consents' in body;
      const events = batch ? body.consents : [body];
      const { deps, apiKey, requestId } = c.var;
      const result = await recordConsents(c.var.db, events, {
        actor: apiKeyActor(apiKey),
        now: deps.clock.now(),
        requestId,
        tombstoneKeys: tombstoneKeys(deps.config.tombstones),
      }).catch((error: unknown) => consentsProblem(error, batch));
      return c.json(result, 201);
    },
    consentsBodyHook,
  );
}
