import { logger } from '../../platform/logging';
import { RequestContext } from '../projects/request-context';
import { Run, RunKind } from '../runs/run.entity';
import { RunsService } from '../runs/runs.service';
import { ParsedRunKind, RunAttempt, RunControl } from '../runs/run-executor';
import { PermanentRunError } from '../runs/run-errors';
import { EncoderModel } from '../encoders/encoder-model.entity';
import { EncodersService } from '../encoders/encoders.service';
import { selectorManifestOf } from '../encoders/encoder-manifest';
import { SelectorsService } from '../selectors/selectors.service';
import { evaluateSelectorAlignment } from '../evaluation';
import { evaluatePairs, PreferencePairs, TrainingConfig } from './head-trainer';
import { HeadParameters } from './head-graph';
import { itemKey, toAlignmentPairs } from './preference-pairs';
import { PendingTrainingWorker, trainHeadInWorker } from './training-worker';
import { encodeHeadTensors } from './training-checkpoint';
import { joinEncoderAndHead } from './selector-export';
import { loadTrainingData, pairTensors, TrainingData, TrainingDeps } from './training-data';
import { TrainingParams, trainingParamsSchema, TrainingService } from './training.service';

/**
 * A TRAINING run (issue 11): builds the pairs once (embeddings from the table, computed only where
 * missing), then for each clinician weight w of the sweep not yet settled trains the head on a worker
 * thread (trainHeadInWorker), storing each epoch with its checkpoint, and registers the head joined to
 * the encoder as a selector version (same validation as an upload, not activated). A resumed attempt
 * skips the settled weights and continues the current one from its last stored epoch: the shuffle of
 * epoch e depends only on (seed, e), so the weights end as an uninterrupted run's.
 */
export class TrainingRun extends ParsedRunKind<TrainingParams> {
  readonly kind = RunKind.TRAINING;
  protected readonly paramsSchema = trainingParamsSchema;

  constructor(
    private readonly deps: TrainingDeps,
    private readonly selectors: SelectorsService,
    private readonly training: TrainingService,
    private readonly runs: RunsService,
  ) {
    super();
  }

  protected async attempt({ run, params, ctx }: RunAttempt<TrainingParams>, control: RunControl): Promise<void> {
    const encoder = await this.deps.encoders.findById(ctx, params.encoderId);
    if (!encoder) throw new PermanentRunError('The encoder was deleted');
    const settled = await this.training.settledWeights(run.id);
    const pending = params.clinicianWeights.filter((w) => !settled.has(w));
    if (pending.length === 0) return;
    // The worker thread starts (loading its modules) while the data loads; each weight's training
    // starts the next weight's worker, so a sweep never waits for one either. Unused ones are stopped.
    let worker: PendingTrainingWorker | undefined = new PendingTrainingWorker();
    let current: PendingTrainingWorker | undefined;
    try {
      const data = await loadTrainingData(ctx, params, encoder, this.deps, control.signal);
      await this.runs.mergeParams(run.id, { ...data.summary });
      await this.runs.addMetrics(run.id, { embeddedImages: data.summary.embeddingsComputed.images, embeddedTexts: data.summary.embeddingsComputed.texts });
      if (data.training.length === 0) throw new PermanentRunError(`No training pairs: ${data.summary.pairCounts.validation} held-out clinician pairs, none left to train on (record model ratings or clinician preferences first)`);
      const validation = data.validation.length ? pairTensors(data.validation, data.rows, data.dim, 1) : undefined;
      for (const [i, w] of pending.entries()) {
        if (control.signal.aborted) return;
        current = worker!;
        worker = i + 1 < pending.length ? new PendingTrainingWorker() : undefined;
        await this.trainOne(ctx, run, params, encoder, data, validation, w, control, current);
      }
    } finally {
      // Taken workers are the trainer's to stop; discard only stops ones never handed work.
      await Promise.all([current?.discard(), worker?.discard()]);
    }
  }

  private async trainOne(ctx: RequestContext, run: Run, params: TrainingParams, encoder: EncoderModel, data: TrainingData, validation: PreferencePairs | undefined, w: number, control: RunControl, worker: PendingTrainingWorker): Promise<void> {
    const pairs = pairTensors(data.training, data.rows, data.dim, w);
    const config: TrainingConfig = { hidden: params.hiddenSizes, loss: params.loss, epochs: params.epochs, batchSize: params.batchSize, learningRate: params.learningRate, seed: params.seed };
    const pairCount = pairs.weights!.length;
    const resume = (await this.training.latestCheckpoint(run.id, w)) ?? undefined;
    if (resume) {
      logger.info('training resumes from a checkpoint', { runId: run.id, clinicianWeight: w, epoch: resume.epochs.length });
      // Summed over attempts: how many epochs resumed attempts did not have to train again.
      await this.runs.addMetrics(run.id, { resumedEpochs: resume.epochs.length });
    }
    const trainingStarted = performance.now();
    if (resume && resume.epochs.length >= params.epochs) await worker.discard();
    const result =
      resume && resume.epochs.length >= params.epochs
        ? { parameters: resume.parameters, epochs: resume.epochs }
        : await trainHeadInWorker(pairs, config, { intraOpThreads: 1 }, {
            signal: control.signal,
            resume,
            validation,
            checkpoints: true,
            onEpoch: async (metrics, state) => {
              await this.training.recordEpoch(run, w, metrics, state);
              control.progressed();
            },
          }, worker);
    // For throughput figures (bench:training): pairs stepped through and the time it took, summed over attempts.
    await this.runs.addMetrics(run.id, { trainingMs: Math.round(performance.now() - trainingStarted), trainedPairs: pairCount * (params.epochs - (resume?.epochs.length ?? 0)) });
    const metrics = validation ? await this.heldOutMetrics(result.parameters, data, validation, params.seed) : null;
    const finalEpoch = result.epochs[result.epochs.length - 1];
    const model = joinEncoderAndHead(await this.deps.encoders.fileBytes(encoder, 'model'), result.parameters, { training_run: run.id, clinician_weight: String(w), seed: String(params.seed) });
    const manifest = selectorManifestOf(this.deps.encoders.manifestOf(encoder), `Trained in the service over encoder ${encoder.name} v${encoder.version} (run ${run.id}, clinician weight ${w}).`);
    const training = {
      clinicianWeight: w,
      encoder: { id: encoder.id, name: encoder.name, version: encoder.version },
      pairCounts: data.summary.pairCounts,
      hyperparameters: { loss: params.loss, hiddenSizes: params.hiddenSizes, epochs: params.epochs, batchSize: params.batchSize, learningRate: params.learningRate, validationFraction: params.validationFraction, includeModelPairs: params.includeModelPairs, includeClinicianPairs: params.includeClinicianPairs },
      seed: params.seed,
      dataHash: data.summary.dataHash,
      finalTrainingLoss: finalEpoch?.meanLoss ?? null,
      finalValidationAlignment: finalEpoch?.validationAlignment ?? null,
    };
    const selector = await this.selectors.registerTrained(
      ctx,
      { name: params.selectorName, description: manifest.description ?? null, files: { model, tokenizer: await this.deps.encoders.fileBytes(encoder, 'tokenizer'), manifest: Buffer.from(JSON.stringify(manifest, null, 2)) } },
      {
        encoderId: encoder.id,
        trainingRunId: run.id,
        training,
        metrics: metrics as Record<string, unknown> | null,
        head: { bytes: encodeHeadTensors(result.parameters.tensors), inputDim: result.parameters.shape.inputDim, hidden: [...result.parameters.shape.hidden] },
      },
    );
    await this.training.recordResult(run, w, selector.id, { ...(metrics ?? {}), clinicianWeight: w });
    // The weight is settled: its checkpoint will never be resumed from.
    await this.training.clearCheckpoints(run.id, w);
  }

  /** Alignment rate, AUC, mean rank and MAP on the held-out clinician pairs, with bootstrap intervals (evaluation module). */
  private async heldOutMetrics(parameters: HeadParameters, data: TrainingData, validation: PreferencePairs, seed: number) {
    const scored = await evaluatePairs(parameters, validation, { intraOpThreads: 1 });
    const scores = new Map<string, number>();
    data.validation.forEach((p, i) => {
      scores.set(itemKey(p.preferred), scored.chosenScores[i]);
      scores.set(itemKey(p.rejected), scored.rejectedScores[i]);
    });
    return evaluateSelectorAlignment(toAlignmentPairs(data.validation), scores, { seed });
  }
}
