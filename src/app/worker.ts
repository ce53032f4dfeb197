import type { AppServices } from './app-services';
import { connectionString } from '../platform/db';
import { JobWorker, startJobWorker } from '../platform/jobs';
import { RUN_TASK } from '../modules/runs/runs.service';
import { RunExecutor } from '../modules/runs/run-executor';
import { GenerationRun } from '../modules/generation/generation.run';
import { RatingRun } from '../modules/rating/rating.run';
import { ClusteringRun } from '../modules/clustering/clustering.run';
import { ScoringRun } from '../modules/scoring/scoring.run';
import { ImageFetchRun } from '../modules/images/image-fetch.run';
import { TrainingRun } from '../modules/training/training.run';
import { TrainedSelectorScorer } from '../modules/scoring/trained-scoring';
import { EvaluationRun } from '../modules/evaluation/evaluation.run';
import { recordTemplates } from '../modules/llm-tasks/prompt-templates';
import { startWebhookWorker } from '../modules/webhooks/webhook-worker';

/**
 * The worker process: takes run jobs from the Postgres queue and executes them. Any number of
 * workers on any number of machines can share one database; `npm start` runs one in-process.
 */
export async function startWorker(services: AppServices): Promise<JobWorker> {
  const { ds, config } = services;
  await recordTemplates(ds);
  const maxSide = config.LLM_IMAGE_MAX_SIDE;
  // The one place that registers the kinds of run: adding a kind is its `<name>.run.ts` and a line here.
  const executor = new RunExecutor(services.runs, [
    new GenerationRun(services.candidates, services.llm, services.images, services.demonstrations, services.runs, maxSide),
    new RatingRun(services.candidates, services.preferences, services.llm, services.images, services.runs, maxSide),
    new ClusteringRun(ds, services.llm, services.images, services.runs),
    new ScoringRun(ds, services.candidates, services.selectors, services.images, services.runs, new TrainedSelectorScorer(services.candidates, services.images, services.encoders, services.selectors)),
    new ImageFetchRun(services.images, services.runs),
    new TrainingRun(services, services.selectors, services.training, services.runs),
    new EvaluationRun(ds, services.preferences, services.candidates, services.images, services.selectors, services.runs),
  ]);
  const deliveries = await startWebhookWorker(services);
  const runs = await startJobWorker({
    connectionString: connectionString(ds),
    tasks: { [RUN_TASK]: (payload, helpers) => executor.handleJob(payload, helpers) },
    concurrency: config.WORKER_CONCURRENCY,
    pollIntervalMs: config.WORKER_POLL_MS,
    heartbeatMs: config.WORKER_HEARTBEAT_MS,
    deadAfterMs: config.WORKER_DEAD_AFTER_MS,
  });
  return { stop: () => Promise.all([runs.stop(), deliveries.stop()]).then(() => undefined) };
}
