import { z } from '@hono/zod-openapi';

/**
 * Query parameters that refuse any parameter they do not name: a misspelt `tpo=5` is a 400
 * naming it, not a default list of 1,000 people.
 */
export function strictQuery<const T extends z.ZodRawShape>(shape: T) {
  const known = Object.keys(shape);
  return z.looseObject(shape).superRefine((query, context) => {
    for (const name of Object.keys(query)) {
      if (!known.includes(name)) {
        context.addIssue({ code: 'custom', path: [name], message: `is not a parameter of this route (known: ${known.join(', ')})` });
      }
    }
  });
}

const positive = (description: string) => z.coerce.number().positive().optional().openapi({ description });

/** The parameters that decide a list, shared by the list and its preview. */
export const LIST_PARAMETERS = {
  channel: z
    .string()
    .min(1)
    .max(50)
    .openapi({ example: 'email', description: 'email, sms, phone (postal and push are closed: no contact holds an address or device)' }),
  top: z.coerce.number().int().positive().optional().openapi({ description: 'the best N reachable people (default 1000)', example: 1000 }),
  percentile: positive('the reachable people among the best-scored P percent'),
  minScore: z.coerce.number().min(0).max(1).optional().openapi({ description: 'the reachable people scored at least this' }),
  expectedBuyers: positive('the smallest top list whose summed probabilities reach this number'),
  holdout: z.coerce.number().int().min(0).max(50).default(0).openapi({ description: 'percent withheld at random as a control group' }),
};

export const SkuParams = z.object({ sku: z.string().min(1).max(100).openapi({ example: 'SKU-BEA-001' }) });

export const FunnelSchema = z.object({
  scored: z.number().int(),
  examined: z.number().int(),
  consentedForChannel: z.number().int(),
  notOpposed: z.number().int(),
  underPressureCap: z.number().int(),
  selected: z.number().int(),
  holdout: z.number().int(),
  returned: z.number().int(),
});

/** The fields a list and its preview share. */
export const SELECTION_FIELDS = {
  product: z.object({ sku: z.string(), name: z.string() }),
  model: z.object({
    id: z.number().int(),
    version: z.number().int(),
    versionId: z.number().int(),
    algorithm: z.string(),
    horizonDays: z.number().int(),
    scoredAt: z.string(),
  }),
  channel: z.string(),
  params: z.record(z.string(), z.unknown()),
  funnel: FunnelSchema,
  expectedBuyers: z.number().openapi({ description: 'summed purchase probabilities of the members to contact' }),
  scoreThreshold: z.number().nullable().openapi({ description: 'the lowest score on the list; null when it is empty' }),
  shortfall: z
    .object({
      asked: z.number().nullable(),
      reached: z.number(),
      of: z.enum(['members', 'expectedBuyers']),
      reason: z.string(),
    })
    .nullable()
    .openapi({
      description:
        'set when the list is shorter than asked (top N or expectedBuyers not reached, or the size cap hit): what it reached and why',
    }),
};

/**
 * A response body that records whether it was fully sent: `settle(true)` once the consumer
 * (the HTTP server writing to the socket) asks for more after the last chunk, `settle(false)`
 * if it cancels first (the client went away). The stream produces a chunk only when asked
 * (high-water mark 0), so a client that stops reading holds the rest back. When settle(true)
 * answers false (the list was released meanwhile), the response ends in an error.
 */
export function deliveryStream(
  chunks: Iterable<string> | AsyncIterable<string>,
  settle: (delivered: boolean) => Promise<boolean>,
): ReadableStream<Uint8Array> {
  const iterator = Symbol.asyncIterator in chunks ? chunks[Symbol.asyncIterator]() : chunks[Symbol.iterator]();
  const encoder = new TextEncoder();
  let settled = false;
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const next = await iterator.next();
        if (!next.done) {
          controller.enqueue(encoder.encode(next.value));
          return;
        }
        settled = true;
        if (await settle(true)) controller.close();
        else controller.error(new Error('the list was released as undelivered before its response completed'));
      },
      async cancel() {
        if (settled) return;
        settled = true;
        await iterator.return?.();
        await settle(false);
      },
    },
    { highWaterMark: 0 },
  );
}
