import type { AuditLogTable } from '../audit/audit.table.ts';
import type { ApiKeyTable } from '../auth/api-key.table.ts';
import type { UiSessionTable } from '../auth/ui-session.table.ts';
import type { ProductTable } from '../catalog/product.table.ts';
import type { ChannelTable, ConsentEventTable, ConsentMethodTable, PurposeTable } from '../consent/consent.table.ts';
import type { ConsentStateTable } from '../consent/consent-state.table.ts';
import type { ContactPersonalDataTable, ContactTable, ErasureTombstoneTable, IdentitySplitTable } from '../contacts/contact.table.ts';
import type { ImportTable } from '../imports/import.table.ts';
import type { JobWorkerTable } from '../jobs/job-worker.table.ts';
import type { OppositionEntryTable, OppositionListTable } from '../opposition/opposition.table.ts';
import type { PurchaseTable } from '../purchases/purchase.table.ts';
import type {
  ConsentSweepTable,
  ModelNetworkTable,
  ModelTable,
  ModelVersionTable,
  PipelineRunPartTable,
  PipelineRunTable,
  ProfilingSnapshotTable,
} from '../registry/registry.table.ts';
import type { ScoreSetTable, ScoreTable } from '../scores/score.table.ts';
import type { ContactPressureTable, TargetExportManifestTable, TargetExportTable } from '../targeting/export.table.ts';

/** The whole schema as Kysely sees it; each stage's folder owns its tables. */
export interface Database {
  purposes: PurposeTable;
  channels: ChannelTable;
  consent_methods: ConsentMethodTable;
  imports: ImportTable;
  contacts: ContactTable;
  contact_personal_data: ContactPersonalDataTable;
  erasure_tombstones: ErasureTombstoneTable;
  identity_splits: IdentitySplitTable;
  consent_events: ConsentEventTable;
  consent_state: ConsentStateTable;
  products: ProductTable;
  purchases: PurchaseTable;
  opposition_lists: OppositionListTable;
  opposition_entries: OppositionEntryTable;
  pipeline_runs: PipelineRunTable;
  pipeline_run_parts: PipelineRunPartTable;
  job_workers: JobWorkerTable;
  consent_sweeps: ConsentSweepTable;
  models: ModelTable;
  model_versions: ModelVersionTable;
  model_networks: ModelNetworkTable;
  profiling_snapshots: ProfilingSnapshotTable;
  score_sets: ScoreSetTable;
  scores: ScoreTable;
  api_keys: ApiKeyTable;
  ui_sessions: UiSessionTable;
  target_exports: TargetExportTable;
  target_export_manifests: TargetExportManifestTable;
  contact_pressure: ContactPressureTable;
  audit_log: AuditLogTable;
}
