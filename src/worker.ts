import type { AppServices } from './app-services';
import { connectionString } from './app-services';
import { JobWorker, startJobWorker } from './platform/jobs';
import { RunKind } from './modules/runs/run.entity';
import { RUN_TASK } from './modules/runs/runs.service';
import { RunExecutor } from './modules/runs/run-executor';
import { GenerationJob } from './modules/generation/generation.job';
import { RatingJob } from './modules/rating/rating.job';
import { ClusteringJob } from './modules/clustering/clustering.job';
import { ScoringJob } from './modules/scoring/scoring.job';
import { recordTemplates } from './modules/generation/prompt-templates';
import { startWebhookWorker } from './modules/webhooks/webhook-worker';

/**
 * The worker process: takes run jobs from the Postgres queue and executes them. Any number of
 * workers on any number of machines can share one database; `npm start` runs one in-process.
 */
export async function startWorker(services: AppServices): Promise<JobWorker> {
  const { ds, config } = services;
  await recordTemplates(ds);
  const maxSide = config.LLM_IMAGE_MAX_SIDE;
  const executor = new RunExecutor(services.runs, {
    [RunKind.GENERATION]: new GenerationJob(ds, services.llm, services.images, services.demonstrations, services.runs, maxSide),
    [RunKind.RATING]: new RatingJob(ds, services.llm, services.images, services.runs, maxSide),
    [RunKind.CLUSTERING]: new ClusteringJob(ds, services.llm, services.images, services.runs),
    [RunKind.SCORING]: new ScoringJob(ds, services.selectors, services.images, services.runs),
  });
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
