import { DataSource } from 'typeorm';
import { AppConfig } from '../platform/config';
import { connectionString } from '../platform/db';
import { BlobStorage, PostgresBlobStorage } from '../platform/storage';
import { UrlSigner } from '../platform/signing';
import { AuthService } from '../modules/projects/auth.service';
import { ProjectsService } from '../modules/projects/projects.service';
import { ImagesService } from '../modules/images/images.service';
import { DemonstrationsService } from '../modules/demonstrations/demonstrations.service';
import { RecordsImportService } from '../modules/demonstrations/records-import.service';
import { CandidatesService } from '../modules/candidates/candidates.service';
import { PreferencesService } from '../modules/preferences/preferences.service';
import { SelectorsService } from '../modules/selectors/selectors.service';
import { ScoringService } from '../modules/scoring/scoring.service';
import { DatasetsService } from '../modules/datasets/datasets.service';
import { DatasetExportsService } from '../modules/datasets/dataset-exports.service';
import { RunsService } from '../modules/runs/runs.service';
import { RunKind } from '../modules/runs/run.entity';
import { LlmClient } from '../platform/llm';
import { LlmGateway } from '../platform/llm-gateway';
import { RunEventsListener, RunEventsPublisher } from '../platform/pubsub';
import { GenerationService } from '../modules/generation/generation.service';
import { RatingService } from '../modules/rating/rating.service';
import { ClusteringService } from '../modules/clustering/clustering.service';
import { OnnxRuntime } from '../platform/onnx';
import { configureComputePool } from '../platform/compute-pool';
import { WebhooksService } from '../modules/webhooks/webhooks.service';
import { ServiceMetrics } from '../platform/metrics';
import { AnnotationService } from '../modules/annotation/annotation.service';
import { AnnotationEvents } from '../modules/annotation/annotation-events';
import { AnnotationAgreementService } from '../modules/annotation/agreement.service';
import { EncodersService } from '../modules/encoders/encoders.service';
import { TrainingService } from '../modules/training/training.service';
import { EvaluationService } from '../modules/evaluation/evaluation.service';

/** The composition root: one instance of each service per process, built from the database and config. */
export interface AppServices {
  ds: DataSource;
  config: AppConfig;
  storage: BlobStorage;
  signer: UrlSigner;
  auth: AuthService;
  projects: ProjectsService;
  images: ImagesService;
  demonstrations: DemonstrationsService;
  recordsImport: RecordsImportService;
  candidates: CandidatesService;
  preferences: PreferencesService;
  selectors: SelectorsService;
  scoring: ScoringService;
  datasets: DatasetsService;
  datasetExports: DatasetExportsService;
  runs: RunsService;
  llm: LlmGateway;
  runEvents: RunEventsListener;
  generation: GenerationService;
  rating: RatingService;
  clustering: ClusteringService;
  webhooks: WebhooksService;
  metrics: ServiceMetrics;
  annotations: AnnotationService;
  annotationAgreement: AnnotationAgreementService;
  encoders: EncodersService;
  training: TrainingService;
  evaluation: EvaluationService;
}

export function createServices(ds: DataSource, config: AppConfig, signer: UrlSigner, role: 'api' | 'worker' = 'api'): AppServices {
  const metrics = new ServiceMetrics(ds, role);
  const storage = new PostgresBlobStorage(ds);
  const images = new ImagesService(ds, storage, { maxBytes: config.MAX_UPLOAD_BYTES, maxPixels: config.MAX_IMAGE_PIXELS, maxSide: config.MAX_IMAGE_SIDE }, config.THUMBNAIL_SIZE, {
    allowPrivateNetworks: config.IMAGE_FETCH_ALLOW_PRIVATE_NETWORKS,
    timeoutMs: config.IMAGE_FETCH_TIMEOUT_MS,
    maxRedirects: config.IMAGE_FETCH_MAX_REDIRECTS,
  });
  const demonstrations = new DemonstrationsService(ds);
  const candidates = new CandidatesService(ds);
  const runs = new RunsService(ds, new RunEventsPublisher(ds, config.RUN_PROGRESS_INTERVAL_MS), config.WORKER_DEAD_AFTER_MS);
  const llm = new LlmGateway(ds, LlmClient.fromConfig(config), config, metrics);
  configureComputePool(config.COMPUTE_THREADS);
  const onnx = new OnnxRuntime({
    executionProvider: config.ONNX_EXECUTION_PROVIDER,
    intraOpThreads: config.ONNX_INTRA_OP_THREADS,
    interOpThreads: config.ONNX_INTER_OP_THREADS,
    cudaDeviceId: config.ONNX_CUDA_DEVICE_ID,
  });
  const selectors = new SelectorsService(ds, storage, onnx, candidates, images, { maxBytes: config.SELECTOR_MAX_BYTES, importDirs: config.SELECTOR_IMPORT_DIRS });
  const encoders = new EncodersService(ds, storage, onnx, candidates, images, { maxBytes: config.SELECTOR_MAX_BYTES, importDirs: config.SELECTOR_IMPORT_DIRS });
  const scoring = new ScoringService(ds, candidates, selectors, runs, config.SCORING_BATCH_SIZE);
  const webhooks = new WebhooksService(ds, {
    retryScheduleMs: config.WEBHOOK_RETRY_SCHEDULE_MS,
    allowPrivateNetworks: config.WEBHOOK_ALLOW_PRIVATE_NETWORKS,
    timeoutMs: config.WEBHOOK_TIMEOUT_MS,
    disableAfterFailedDeliveries: config.WEBHOOK_DISABLE_AFTER_FAILED_DELIVERIES,
    secretGraceMs: config.WEBHOOK_SECRET_GRACE_MS,
  });
  runs.onFinished((run, requestId) => webhooks.runFinished(run, requestId));
  const datasets = new DatasetsService(ds, candidates, scoring, runs, webhooks);
  const preferences = new PreferencesService(ds, candidates);
  const generation = new GenerationService(ds, llm, images, demonstrations, candidates, runs);
  const rating = new RatingService(candidates, preferences, llm, runs);
  runs.registerReparser(RunKind.GENERATION, generation);
  runs.registerReparser(RunKind.RATING, rating);
  const projects = new ProjectsService(ds);
  const annotations = new AnnotationService(ds, candidates, preferences, demonstrations, datasets, runs, projects, new AnnotationEvents(ds, connectionString(ds)), webhooks);
  const training = new TrainingService(ds, encoders, runs);
  const evaluation = new EvaluationService(ds, selectors, images, preferences, candidates, runs, config.SCORING_BATCH_SIZE);
  // Evaluation reads a training run's held-out images through the training module, wired here so that evaluation imports no training service.
  evaluation.trainingHeldOutImages = (ctx, runId) => training.validationImageIds(ctx, runId);
  return {
    ds,
    config,
    storage,
    signer,
    auth: new AuthService(ds),
    projects,
    images,
    demonstrations,
    recordsImport: new RecordsImportService(ds, images, demonstrations, runs, config.IMAGE_FETCH_CONCURRENCY),
    candidates,
    preferences,
    selectors,
    scoring,
    datasets,
    datasetExports: new DatasetExportsService(ds, datasets, images),
    runs,
    llm,
    runEvents: new RunEventsListener(connectionString(ds)),
    generation,
    rating,
    clustering: new ClusteringService(llm, images, runs),
    webhooks,
    metrics,
    annotations,
    annotationAgreement: new AnnotationAgreementService(ds, annotations, selectors, candidates, images),
    encoders,
    training,
    evaluation,
  };
}
