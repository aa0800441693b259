import { type PipelineReport, runPipeline } from '../../pipelines/run-pipeline.ts';
import type { DatabaseHandle } from '../../src/db/engine.ts';
import { allValid, type Base, DAY_MS, movableClock, pipelineContext, seedBase, smallOptions } from '../pipelines/pipeline.fixtures.ts';

/*
 * A small real base for the review pages: the pipeline fixtures' synthetic people (example.com
 * addresses, no real person), two nightly runs so that models have a history, and a product
 * added after them with too few buyers to model.
 */

export const FIRST_RUN = new Date('2026-11-01T06:00:00Z');
export const SECOND_RUN = new Date(FIRST_RUN.getTime() + DAY_MS);
export const CONTACTS = 300;

export interface ReviewBase {
  base: Base;
  runs: PipelineReport[];
  /** the clock the runs used, left after the last run */
  clock: ReturnType<typeof movableClock>;
}

export async function seedReviewBase(database: DatabaseHandle): Promise<ReviewBase> {
  process.env.CIBLE_CODE_VERSION ??= 'review-pages-test';
  const clock = movableClock(FIRST_RUN);
  const base = await seedBase(database, {
    seed: 4242,
    from: new Date(FIRST_RUN.getTime() - 400 * DAY_MS),
    to: FIRST_RUN,
    consents: allValid(CONTACTS),
  });
  const context = pipelineContext(database, clock);
  const first = await runPipeline(context, smallOptions({ trigger: 'test:review-first' }));
  clock.set(SECOND_RUN);
  const second = await runPipeline(context, smallOptions({ trigger: 'test:review-second' }));
  clock.set(new Date(SECOND_RUN.getTime() + 3_600_000));
  // a product nobody has bought: in the catalogue, never modelled
  await database.db.insertInto('products').values({ sku: 'PL-RARE', name: 'Rare thing', category: 'kitchen' }).execute();
  return { base, runs: [first, second], clock };
}
