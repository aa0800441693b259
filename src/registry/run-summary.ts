import { z } from 'zod';
import { jsonNumber } from './model-metrics.ts';

/*
 * The one typed reader of pipeline_runs.summary, the report a run writes when it ends. A part
 * of another shape (older code, a run that died) reads as absent, never as a cast.
 */

const finite = z.number().refine(Number.isFinite);
const nullableNumber = z.unknown().transform(jsonNumber);

const Stage = z.object({ stage: z.string(), seconds: finite, rows: finite.catch(0) });
export type StageTiming = z.infer<typeof Stage>;

const TargetOutcome = z.object({
  target: z.coerce.string(),
  status: z.coerce.string(),
  reason: z.unknown().transform((v) => (v === null || v === undefined ? '' : String(v))),
  version: nullableNumber,
  algorithm: z.string().nullable().catch(null).default(null),
  auc: z
    .object({ model: nullableNumber, rfm: nullableNumber, bgnbd: nullableNumber, champion: nullableNumber })
    .catch({ model: null, rfm: null, bgnbd: null, champion: null })
    .default({ model: null, rfm: null, bgnbd: null, champion: null }),
  scored: nullableNumber,
});
export type TargetOutcome = z.infer<typeof TargetOutcome>;

const Funnel = z.object({
  at: z.string(),
  channels: z.array(
    z.object({
      channel: z.string(),
      at: z.string().catch(''),
      contacts: finite,
      profilingConsent: finite,
      channelConsent: finite,
      /** null in funnels recorded before the detail was named */
      contactDetail: z.string().nullable().catch(null),
      withContactDetail: finite,
      notOpposed: finite,
      notObjected: finite,
      blocked: z.string().nullable().catch(null),
    }),
  ),
});

/** The consent funnel a run recorded when it scored (counts only), as `ChannelFunnel`s. */
export type RecordedFunnel = z.infer<typeof Funnel>;

function part<S extends z.ZodType>(schema: S, value: unknown): z.infer<S> | null {
  if (value === null || value === undefined) return null;
  const parsed = schema.safeParse(value);
  return parsed.success ? parsed.data : null;
}

/** Stage timings, in the order they ran; [] when none is recorded. */
export function readStages(json: unknown): StageTiming[] {
  return part(z.array(Stage), json) ?? [];
}

/** Each target's outcome; [] when none is recorded. Entries of another shape are left out. */
export function readTargetOutcomes(json: unknown): TargetOutcome[] {
  if (!Array.isArray(json)) return [];
  return json.flatMap((entry) => {
    const parsed = TargetOutcome.safeParse(entry);
    return parsed.success ? [parsed.data] : [];
  });
}

export function readConsentFunnel(json: unknown): RecordedFunnel | null {
  return part(Funnel, json);
}
