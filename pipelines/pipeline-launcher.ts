import { type PipelineLauncher, PipelineBusyError } from '../src/api/api-env.ts';
import type { AppContext } from '../src/context.ts';
import { DEFAULT_SPECIAL_CATEGORIES } from './feature-spec.ts';
import { logProgress, type Progress } from './progress.ts';
import { DEFAULT_PIPELINE_OPTIONS, type PipelineOptions, runPipeline } from './run-pipeline.ts';

/** The in-process launcher: what `cible serve` gives the API. */
export interface InProcessPipelineLauncher extends PipelineLauncher {
  /** the run started here that is still going, if any */
  activeRunId(): number | null;
  /** resolves once no run started here is going (at once when none is) */
  idle(): Promise<void>;
}

export type LauncherDefaults = Partial<Omit<PipelineOptions, 'kind' | 'trigger' | 'asOf' | 'products'>>;

/**
 * Runs the pipeline in this process, in the background, one run at a time. The run record is
 * runPipeline's own (created as 'running' before any work), so start() answers with its id as
 * soon as it exists and the rest of the run goes on after the HTTP response.
 *
 * Refuses with PipelineBusyError when a run is already running, here or in another process
 * (a `cible pipeline run`): the pipeline_runs table says so.
 */
export function createPipelineLauncher(context: AppContext, defaults: LauncherDefaults = {}): InProcessPipelineLauncher {
  const { logger } = context;
  let active: { runId: number | null; done: Promise<void> } | null = null;

  const baseOptions: Omit<PipelineOptions, 'kind' | 'trigger' | 'asOf' | 'products'> = {
    ...DEFAULT_PIPELINE_OPTIONS,
    specialCategories: [...new Set([...DEFAULT_SPECIAL_CATEGORIES, ...context.config.specialCategories])],
    backend: context.config.tfBackend,
    ...defaults,
  };

  return {
    activeRunId: () => active?.runId ?? null,
    idle: () => active?.done ?? Promise.resolve(),

    async start(request) {
      if (active) throw new PipelineBusyError(active.runId ? `pipeline run ${active.runId} is still running` : 'a pipeline run is being started');
      // taken before the first await: two requests at once cannot both pass the check below
      let release!: () => void;
      const slot: { runId: number | null; done: Promise<void> } = { runId: null, done: new Promise((resolve) => (release = resolve)) };
      active = slot;
      const free = () => {
        if (active === slot) active = null;
        release();
      };

      let running: { id: number } | undefined;
      try {
        running = await context.database.db
          .selectFrom('pipeline_runs')
          .select('id')
          .where('status', '=', 'running')
          .orderBy('id')
          .executeTakeFirst();
      } catch (error) {
        free();
        throw error;
      }
      if (running) {
        free();
        throw new PipelineBusyError(`pipeline run ${running.id} is still running; try again when it has finished`);
      }

      const options: PipelineOptions = {
        ...baseOptions,
        kind: 'pipeline',
        trigger: `api:${request.actor}`,
        asOf: request.asOf ?? null,
        horizonDays: request.horizonDays ?? baseOptions.horizonDays,
        products: request.products === 'all' ? null : request.products,
      };
      let started!: (runId: number) => void;
      const runId = new Promise<number>((resolve) => (started = resolve));
      let log: Progress | null = null;
      const progress: Progress = {
        runStarted(id) {
          slot.runId = id;
          log = logProgress(logger.child({ runId: id }));
          logger.info({ runId: id, actor: request.actor, products: request.products === 'all' ? 'all' : request.products.length, horizonDays: options.horizonDays }, 'pipeline run started');
          started(id);
        },
        stage: (name) => log?.stage(name),
        step: (detail, done, total) => log?.step(detail, done, total),
        done: (stage, seconds, rows) => log?.done(stage, seconds, rows),
      };
      const run = runPipeline(context, options, progress);

      run
        .then(
          (report) => {
            const champions = report.targets.filter((target) => target.status === 'champion').length;
            logger.info({ runId: report.runId, targets: report.targets.length, champions, population: report.population }, 'pipeline run succeeded');
          },
          (error: unknown) => {
            // the type and code only: a message may quote values read from the data
            logger.error({ runId: slot.runId, err: describeError(error) }, 'pipeline run failed; its error is in the run record');
          },
        )
        .finally(free);

      // the id as soon as runPipeline has created the record; a failure before that is the caller's
      return Promise.race([runId, run.then((report) => report.runId)]);
    },
  };
}

/** What can be logged of an error without personal data. */
function describeError(error: unknown): { type: string; code?: string } {
  if (!(error instanceof Error)) return { type: typeof error };
  const code = (error as { code?: unknown }).code;
  return { type: error.name, ...(typeof code === 'string' ? { code } : {}) };
}
