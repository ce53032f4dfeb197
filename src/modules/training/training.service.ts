import { DataSource } from 'typeorm';
import { z } from 'zod';
import { expectGlobalId } from '../../platform/ids';
import { userError, UserErrorCode, UserErrorsException } from '../../platform/user-errors';
import { RequestContext } from '../projects/request-context';
import { Role } from '../projects/role';
import { EncodersService } from '../encoders/encoders.service';
import { Run, RunKind } from '../runs/run.entity';
import { RunsService } from '../runs/runs.service';
import { decodeCheckpoint, encodeCheckpoint } from './training-checkpoint';
import { EpochMetrics, TrainerState } from './head-trainer';
import { TrainingEpoch } from './training-epoch.entity';
import { TrainingResult } from './training-result.entity';
import { StartTrainingRunInput, TrainingLoss } from './training.inputs';

export const DEFAULT_CLINICIAN_WEIGHT = 10;
const MAX_SWEEP = 16;

export const trainingParamsSchema = z.object({
  encoderId: z.string().uuid(),
  encoder: z.object({ name: z.string(), version: z.number().int() }),
  selectorName: z.string(),
  clinicianWeights: z.array(z.number().positive()).min(1),
  includeModelPairs: z.boolean(),
  includeClinicianPairs: z.boolean(),
  loss: z.union([z.object({ kind: z.literal('logistic') }), z.object({ kind: z.literal('hinge'), margin: z.number().min(0) })]),
  hiddenSizes: z.array(z.number().int().min(1)).min(1),
  epochs: z.number().int().min(1),
  batchSize: z.number().int().min(1),
  learningRate: z.number().positive(),
  validationFraction: z.number().min(0).max(1),
  seed: z.number().int().min(0).max(0xffffffff),
  /** Preferences recorded before this instant (the run's creation) are its data: a resumed attempt sees the same pairs. */
  preferencesBefore: z.string(),
});
export type TrainingParams = z.infer<typeof trainingParamsSchema>;

/** What the worker learns about the data and writes into the run's params (read back by `details`). */
export interface TrainingDataSummary {
  pairCounts: { model: number; clinician: number; validation: number; droppedModelPairs: number; droppedClinicianPairs: number; withoutEmbeddings: number; byKind: Record<string, number> };
  validationImageIds: string[];
  dataHash: string;
  embeddingsComputed: { images: number; texts: number };
}

export interface EpochRecord {
  clinicianWeight: number;
  epoch: number;
  trainingLoss: number;
  trainingAlignment: number;
  validationAlignment: number | null;
  steps: number;
}

const invalid = (field: string, message: string) => new UserErrorsException([userError(UserErrorCode.INVALID, message, ['input', field])]);

/**
 * Training runs (issue 11): their parameters, their epochs with the checkpoint a resumed attempt
 * continues from, and their results (one selector version per clinician weight). The run itself is
 * training.run.ts; the selector versions belong to the selectors module.
 */
export class TrainingService {
  constructor(
    private readonly ds: DataSource,
    private readonly encoders: EncodersService,
    private readonly runs: RunsService,
  ) {}

  async startRun(ctx: RequestContext, input: StartTrainingRunInput): Promise<Run> {
    ctx.assertRole(Role.CURATOR);
    const encoder = input.encoderId ? await this.encoders.findById(ctx, expectGlobalId(input.encoderId, 'EncoderModel', 'input.encoderId')) : await this.encoders.findLatest(ctx);
    if (!encoder) throw new UserErrorsException([userError(UserErrorCode.NOT_FOUND, input.encoderId ? 'Encoder not found' : 'The project has no encoder; register one with registerEncoderModel', ['input', 'encoderId'])]);
    const params = this.checkedParams(input);
    const run: TrainingParams = {
      encoderId: encoder.id,
      encoder: { name: encoder.name, version: encoder.version },
      ...params,
      preferencesBefore: new Date().toISOString(),
    };
    return this.runs.create(ctx, { kind: RunKind.TRAINING, params: run, targets: this.encoders.targetQuery(ctx, encoder.id), countItems: async () => params.clinicianWeights.length });
  }

  private checkedParams(input: StartTrainingRunInput): Omit<TrainingParams, 'encoderId' | 'encoder' | 'preferencesBefore'> {
    const selectorName = input.selectorName.trim();
    if (!/^[\w.-]{1,100}$/.test(selectorName)) throw invalid('selectorName', 'Use 1-100 letters, digits, dots, dashes or underscores');
    if (input.clinicianWeight != null && input.clinicianWeights != null) throw invalid('clinicianWeights', 'Give clinicianWeight or clinicianWeights, not both');
    const weights = input.clinicianWeights ?? [input.clinicianWeight ?? DEFAULT_CLINICIAN_WEIGHT];
    const weightField = input.clinicianWeights ? 'clinicianWeights' : 'clinicianWeight';
    if (weights.length < 1 || weights.length > MAX_SWEEP) throw invalid(weightField, `Give 1 to ${MAX_SWEEP} clinician weights`);
    if (!weights.every((w) => Number.isFinite(w) && w > 0 && w <= 1e6)) throw invalid(weightField, 'Clinician weights must be numbers above 0 and at most 1,000,000');
    if (new Set(weights).size !== weights.length) throw invalid(weightField, 'Clinician weights must be distinct');
    const includeModelPairs = input.includeModelPairs ?? true;
    const includeClinicianPairs = input.includeClinicianPairs ?? true;
    if (!includeModelPairs && !includeClinicianPairs) throw invalid('includeModelPairs', 'Include model pairs, clinician pairs or both');
    const hinge = input.loss === TrainingLoss.HINGE;
    if (!hinge && input.margin != null) throw invalid('margin', 'margin applies to the HINGE loss only');
    const margin = input.margin ?? 1;
    if (hinge && !(Number.isFinite(margin) && margin >= 0 && margin <= 100)) throw invalid('margin', 'margin must be from 0 to 100');
    const hiddenSizes = input.hiddenSizes ?? [512, 512, 512];
    if (hiddenSizes.length < 1 || hiddenSizes.length > 8 || !hiddenSizes.every((h) => Number.isInteger(h) && h >= 1 && h <= 4096)) throw invalid('hiddenSizes', 'Give 1 to 8 hidden layer widths from 1 to 4096');
    const int = (field: string, value: number | null | undefined, fallback: number, min: number, max: number) => {
      const v = value ?? fallback;
      if (!Number.isInteger(v) || v < min || v > max) throw invalid(field, `${field} must be an integer from ${min} to ${max}`);
      return v;
    };
    const epochs = int('epochs', input.epochs, 20, 1, 1000);
    const batchSize = int('batchSize', input.batchSize, 256, 1, 65536);
    const seed = int('seed', input.seed, 0, 0, 0xffffffff);
    const learningRate = input.learningRate ?? 1e-3;
    if (!(Number.isFinite(learningRate) && learningRate > 0 && learningRate <= 1)) throw invalid('learningRate', 'learningRate must be above 0 and at most 1');
    const validationFraction = input.validationFraction ?? 0.2;
    if (!(validationFraction >= 0 && validationFraction <= 0.9)) throw invalid('validationFraction', 'validationFraction must be from 0 to 0.9');
    return {
      selectorName,
      clinicianWeights: weights,
      includeModelPairs,
      includeClinicianPairs,
      loss: hinge ? { kind: 'hinge', margin } : { kind: 'logistic' },
      hiddenSizes,
      epochs,
      batchSize,
      learningRate,
      validationFraction,
      seed,
    };
  }

  /** The images of the held-out clinician pairs of a training run (what evaluation must not have trained on); empty until the worker split the data. */
  async validationImageIds(ctx: RequestContext, trainingRunId: string): Promise<string[]> {
    const run = await this.runs.findById(ctx, trainingRunId);
    if (!run || run.kind !== RunKind.TRAINING) return [];
    const ids = (run.params as { validationImageIds?: unknown }).validationImageIds;
    return Array.isArray(ids) ? (ids as string[]) : [];
  }

  /** The run's epochs, by clinician weight then epoch. */
  async epochs(ctx: RequestContext, runId: string): Promise<EpochRecord[]> {
    const rows = await this.ds.getRepository(TrainingEpoch).find({
      where: { projectId: ctx.projectId, runId },
      order: { clinicianWeight: 'ASC', epoch: 'ASC' },
      select: { clinicianWeight: true, epoch: true, trainingLoss: true, trainingAlignment: true, validationAlignment: true, steps: true },
    });
    return rows.map((r) => ({ clinicianWeight: r.clinicianWeight, epoch: r.epoch, trainingLoss: r.trainingLoss, trainingAlignment: r.trainingAlignment, validationAlignment: r.validationAlignment, steps: r.steps }));
  }

  /**
   * Stores an epoch with its checkpoint in one statement, clearing the previous epoch's checkpoint
   * (only the latest is needed to resume). A repeated epoch (a resumed attempt that re-did it) keeps the first.
   */
  async recordEpoch(run: Pick<Run, 'id' | 'projectId'>, clinicianWeight: number, metrics: EpochMetrics, state: TrainerState | undefined): Promise<void> {
    await this.ds.query(
      `WITH cleared AS (
         UPDATE training_epochs SET checkpoint = NULL WHERE run_id = $1 AND clinician_weight = $2 AND epoch < $3 AND checkpoint IS NOT NULL RETURNING 1)
       INSERT INTO training_epochs (run_id, clinician_weight, epoch, project_id, training_loss, training_alignment, validation_alignment, steps, checkpoint)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (run_id, clinician_weight, epoch) DO NOTHING`,
      [run.id, clinicianWeight, metrics.epoch, run.projectId, metrics.meanLoss, metrics.alignment, metrics.validationAlignment ?? null, metrics.steps, state ? encodeCheckpoint(state) : null],
    );
  }

  /** The latest checkpoint of a run's clinician weight, to resume from; null to start afresh. */
  async latestCheckpoint(runId: string, clinicianWeight: number): Promise<TrainerState | null> {
    const rows: { checkpoint: Buffer }[] = await this.ds.query(
      `SELECT checkpoint FROM training_epochs WHERE run_id = $1 AND clinician_weight = $2 AND checkpoint IS NOT NULL ORDER BY epoch DESC LIMIT 1`,
      [runId, clinicianWeight],
    );
    return rows.length ? decodeCheckpoint(rows[0].checkpoint) : null;
  }

  async clearCheckpoints(runId: string, clinicianWeight: number): Promise<void> {
    await this.ds.query(`UPDATE training_epochs SET checkpoint = NULL WHERE run_id = $1 AND clinician_weight = $2 AND checkpoint IS NOT NULL`, [runId, clinicianWeight]);
  }

  /** Clinician weights the run has already registered a selector for (settled items). */
  async settledWeights(runId: string): Promise<Set<number>> {
    const rows: { clinician_weight: number }[] = await this.ds.query(`SELECT clinician_weight FROM training_results WHERE run_id = $1`, [runId]);
    return new Set(rows.map((r) => r.clinician_weight));
  }

  /** Records a clinician weight's result, with the run's counters in the same statement. */
  async recordResult(run: Pick<Run, 'id' | 'projectId'>, clinicianWeight: number, selectorModelId: string, metrics: Record<string, unknown>): Promise<boolean> {
    const insert = this.ds.createQueryBuilder().insert().into(TrainingResult).values({ projectId: run.projectId, runId: run.id, clinicianWeight, selectorModelId, metrics: metrics as never });
    return this.runs.recordItem(insert, run.id, { done: 1, outcome: 'TRAINED' });
  }
}
