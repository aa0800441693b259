import { z } from 'zod';

/*
 * The one typed reader of the JSON columns the pipelines write about a model version
 * (model_versions.metrics and baseline_metrics). Versions trained by older code lack some
 * parts, and a part whose shape is not the one expected is read as absent (null) rather than
 * trusted: every reader (review pages, API, CLI) then handles "not recorded" the same way.
 */

const finite = z.number().refine(Number.isFinite);
/** NaN and infinities are stored as null by JSON; either reads as null */
const figure = finite.nullable().catch(null);

const Interval = z.object({ auc: finite, low: finite, high: finite });
export type AucInterval = z.infer<typeof Interval>;

const GainsRow = z.object({
  decile: finite,
  populationShare: finite,
  cumulativeGain: z
    .number()
    .nullable()
    .catch(null)
    .transform((v) => v ?? Number.NaN),
  lift: z
    .number()
    .nullable()
    .catch(null)
    .transform((v) => v ?? Number.NaN),
  cumulativeLift: z
    .number()
    .nullable()
    .catch(null)
    .transform((v) => v ?? Number.NaN),
});
export type GainsInput = z.infer<typeof GainsRow>;

const RocPoint = z.object({ falsePositiveRate: finite, truePositiveRate: finite });
export type RocInput = z.infer<typeof RocPoint>;

const HistogramBin = z.object({ lower: finite, upper: finite, buyers: finite, nonBuyers: finite });
export type HistogramInput = z.infer<typeof HistogramBin>;

const CalibrationBin = z.object({
  lower: finite,
  upper: finite,
  count: finite,
  meanPredicted: z.number().nullable(),
  observedRate: z.number().nullable(),
});
export type CalibrationInput = z.infer<typeof CalibrationBin>;

const Curves = z.object({
  roc: z.array(RocPoint).optional().catch(undefined),
  scoreHistogram: z.array(HistogramBin).optional().catch(undefined),
  calibration: z.array(CalibrationBin).optional().catch(undefined),
});

/** The figures of one evaluation (a model's, or a baseline's) as stored; curves when recorded. */
const Evaluation = z.object({
  rows: finite.optional().catch(undefined),
  positives: finite.optional().catch(undefined),
  baseRate: figure.optional(),
  rocAuc: figure.optional(),
  prAuc: figure.optional(),
  logLoss: figure.optional(),
  brier: figure.optional(),
  expectedCalibrationError: figure.optional(),
  gains: z.array(GainsRow).optional().catch(undefined),
  curves: Curves.optional().catch(undefined),
  /** where versions before the curves kept their calibration bins */
  reliability: z.array(CalibrationBin).optional().catch(undefined),
});
export type StoredEvaluation = z.infer<typeof Evaluation>;

const Importance = z.array(z.object({ group: z.string(), aucDrop: figure }));

/** Reads one part; a part of another shape is null. */
function part<S extends z.ZodType>(schema: S, value: unknown): z.infer<S> | null {
  if (value === null || value === undefined) return null;
  const parsed = schema.safeParse(value);
  return parsed.success ? parsed.data : null;
}

export interface VersionMetrics {
  evaluation: StoredEvaluation | null;
  evaluationWindow: { cutoff?: string; horizonDays?: number; rows?: number } | null;
  /** buyers among the whole snapshot in the window the production version is trained on */
  trainingWindow: { buyers: number | null } | null;
  evaluationDesign: { kind: string; reason: string } | null;
  aucInterval: AucInterval | null;
  /** every candidate judged on the same rows, by algorithm */
  candidates: Record<string, AucInterval | null> | null;
  margin: { over: string; difference: number; low: number; high: number } | null;
  importance: Array<{ group: string; aucDrop: number | null }> | null;
  /** the previous champion judged on this version's window, and the paired difference with it */
  champion: {
    version: number;
    algorithm?: string;
    auc: number | null;
    difference?: { difference: number; low: number; high: number } | null;
  } | null;
}

export function readVersionMetrics(json: unknown): VersionMetrics {
  const metrics = (json !== null && typeof json === 'object' ? json : {}) as Record<string, unknown>;
  return {
    evaluation: part(Evaluation, metrics.evaluation),
    evaluationWindow: part(
      z.object({ cutoff: z.string().optional(), horizonDays: finite.optional(), rows: finite.optional() }),
      metrics.evaluationWindow,
    ),
    trainingWindow: part(z.object({ buyers: figure.default(null) }), metrics.trainingWindow),
    evaluationDesign: part(z.object({ kind: z.string(), reason: z.string() }), metrics.evaluationDesign),
    aucInterval: part(Interval, metrics.aucInterval),
    candidates: part(z.record(z.string(), Interval.nullable().catch(null)), metrics.candidates),
    margin: part(z.object({ over: z.string(), difference: finite, low: finite, high: finite }), metrics.margin),
    importance: part(Importance, metrics.importance),
    champion: part(
      z.object({
        version: finite,
        algorithm: z.string().optional(),
        auc: figure,
        difference: z.object({ difference: finite, low: finite, high: finite }).nullable().optional().catch(null),
      }),
      metrics.champion,
    ),
  };
}

export interface BaselineMetrics {
  rfm: StoredEvaluation | null;
  bgnbd: StoredEvaluation | null;
}

export function readBaselineMetrics(json: unknown): BaselineMetrics {
  const metrics = (json !== null && typeof json === 'object' ? json : {}) as Record<string, unknown>;
  return { rfm: part(Evaluation, metrics.rfm), bgnbd: part(Evaluation, metrics.bgnbd) };
}

/** A JSON number as stored (a jsonb scalar read through `->`), or null. */
export function jsonNumber(value: unknown): number | null {
  if (value === null || value === undefined) return null;
  const n = typeof value === 'number' ? value : Number(value);
  return Number.isFinite(n) ? n : null;
}
