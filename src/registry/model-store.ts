import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { io } from '@tensorflow/tfjs';
import type { Kysely } from 'kysely';
import type { Database } from '../db/database.ts';
import type { NetworkRole } from './registry.table.ts';

export interface NetworkRecord {
  runId: number | null;
  role: NetworkRole;
  algorithm: string;
  featureList: string[];
  /** what inference needs besides the weights: targets, standardisation, calibration, explanation groups */
  metadata: Record<string, unknown>;
}

function joinWeights(weightData: io.WeightData): Buffer {
  const parts = Array.isArray(weightData) ? weightData : [weightData];
  return Buffer.concat(parts.map((part) => Buffer.from(part)));
}

/**
 * A tfjs IOHandler over the registry: `model.save(saveNetwork(db, record))` stores the
 * topology and weights in model_networks, so every API or worker process shares them.
 * The saved id is passed to `onSaved`.
 */
export function saveNetwork(db: Kysely<Database>, record: NetworkRecord, onSaved: (networkId: number) => void): io.IOHandler {
  return {
    async save(artifacts) {
      if (!artifacts.modelTopology || !artifacts.weightSpecs || !artifacts.weightData) {
        throw new Error('a network is stored with its topology and weights');
      }
      const weights = joinWeights(artifacts.weightData);
      const row = await db
        .insertInto('model_networks')
        .values({
          run_id: record.runId,
          role: record.role,
          algorithm: record.algorithm,
          feature_list: JSON.stringify(record.featureList),
          metadata: JSON.stringify(record.metadata),
          format: artifacts.format ?? 'layers-model',
          model_topology: JSON.stringify(artifacts.modelTopology),
          weight_specs: JSON.stringify(artifacts.weightSpecs),
          weight_data: weights,
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      onSaved(row.id);
      return {
        modelArtifactsInfo: {
          dateSaved: new Date(),
          modelTopologyType: 'JSON',
          modelTopologyBytes: JSON.stringify(artifacts.modelTopology).length,
          weightSpecsBytes: JSON.stringify(artifacts.weightSpecs).length,
          weightDataBytes: weights.length,
        },
      };
    },
  };
}

export interface StoredNetwork {
  id: number;
  role: NetworkRole;
  algorithm: string;
  featureList: string[];
  metadata: Record<string, unknown>;
  handler: io.IOHandler;
}

/** Reads one network; `handler` goes to `tf.loadLayersModel`. */
export async function loadNetwork(db: Kysely<Database>, networkId: number): Promise<StoredNetwork> {
  const row = await db.selectFrom('model_networks').selectAll().where('id', '=', networkId).executeTakeFirst();
  if (!row) throw new Error(`model network ${networkId} does not exist`);
  const weights = row.weight_data;
  const weightData = weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength) as ArrayBuffer;
  return {
    id: row.id,
    role: row.role,
    algorithm: row.algorithm,
    featureList: row.feature_list,
    metadata: row.metadata,
    handler: {
      load: async () => ({
        modelTopology: row.model_topology,
        weightSpecs: row.weight_specs as io.WeightsManifestEntry[],
        weightData,
        format: row.format,
      }),
    },
  };
}

/** Writes a network as model.json + weights.bin (the tfjs file layout) for inspection. */
export async function exportNetwork(db: Kysely<Database>, networkId: number, directory: string): Promise<string> {
  const row = await db.selectFrom('model_networks').selectAll().where('id', '=', networkId).executeTakeFirst();
  if (!row) throw new Error(`model network ${networkId} does not exist`);
  const folder = join(directory, `network-${row.id}-${row.role}-${row.algorithm}`);
  await mkdir(folder, { recursive: true });
  await writeFile(join(folder, 'weights.bin'), row.weight_data);
  await writeFile(
    join(folder, 'model.json'),
    JSON.stringify(
      {
        format: row.format,
        generatedBy: 'cible',
        modelTopology: row.model_topology,
        weightsManifest: [{ paths: ['weights.bin'], weights: row.weight_specs }],
        userDefinedMetadata: { featureList: row.feature_list, ...row.metadata },
      },
      null,
      2,
    ),
  );
  return folder;
}
