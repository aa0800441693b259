import type { ModelTarget } from '../../registry/model-catalog.repository.ts';
import { findModelRecord, type ModelChartHead, type ModelRecord } from '../model.repository.ts';
import { targetFromPath } from '../paths.ts';
import { errorPage, type UiContext } from '../ui-env.tsx';

/** A target named in the path with its record, or the page that says why not. */
export async function resolveTarget(c: UiContext): Promise<{ target: ModelTarget; record: ModelRecord | null } | Response> {
  const target = targetFromPath(c.req.param('target') ?? '');
  if (!target)
    return errorPage(
      c,
      400,
      'Not a model name',
      'A model is named by its product SKU, by category:NAME or by any, in at most 200 characters.',
    );
  const record = await findModelRecord(c.var.db, target);
  return { target, record };
}

/** The head of a model as its charts need it, from the record a page read. */
export function headOf(record: ModelRecord): ModelChartHead {
  const champion = record.champion;
  return {
    modelId: record.id,
    champion: champion ? { id: champion.id, networkId: champion.networkId, populationSize: champion.populationSize } : null,
    live: champion && record.liveSet && record.liveSet.modelVersionId === champion.id ? record.liveSet : null,
  };
}
