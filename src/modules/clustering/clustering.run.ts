import crypto from 'node:crypto';
import { DataSource } from 'typeorm';
import { LlmGateway } from '../../platform/llm-gateway';
import { logger } from '../../platform/logging';
import { ImagesService } from '../images/images.service';
import { Image } from '../images/image.entity';
import { RequestContext } from '../projects/request-context';
import { Run, RunKind } from '../runs/run.entity';
import { RunsService } from '../runs/runs.service';
import { ParsedRunKind, RunAttempt, RunControl } from '../runs/run-executor';
import { forEachModelCall } from '../llm-tasks/model-call-loop';
import { ClusteringParams, clusteringParamsSchema } from './clustering.service';
import { paceOf } from '../llm-tasks/model-call-params';
import { clusteringText, imageFeatureVector, joinFeatures, kMeansInThread, missingImageFeatures } from './features';

interface ClusterImage {
  id: string;
  text: string;
  textHash: string;
  contentHash: string | null;
}

const EMBEDDING_BATCH = 64;
/** The outcome of an image whose text embedding is ready, in the run's countsByStatus. */
const EMBEDDED = 'EMBEDDED';

/**
 * Embeds caption + mentions (cached per project, model and text), computes cheap image features,
 * runs seeded k-means and writes every assignment in one statement. The result is written at the
 * end, so a resumed run starts its counters over and only pays for embeddings not yet cached.
 */
export class ClusteringRun extends ParsedRunKind<ClusteringParams> {
  readonly kind = RunKind.CLUSTERING;
  protected readonly paramsSchema = clusteringParamsSchema;

  constructor(
    private readonly ds: DataSource,
    private readonly llm: LlmGateway,
    private readonly images: ImagesService,
    private readonly runs: RunsService,
  ) {
    super();
  }

  protected async attempt({ run, params, ctx }: RunAttempt<ClusteringParams>, control: RunControl): Promise<void> {
    await this.runs.resetCounters(run.id);
    const images = await this.loadImages(ctx, run, params.embeddingModel);
    const embeddings = await this.embeddings(run, params, images, control);
    if (control.signal.aborted) return;
    const rows: Float32Array[] = [];
    for (const image of images) {
      rows.push(joinFeatures(embeddings.get(image.textHash) ?? [], await this.imageFeatures(run.projectId, image), { text: params.textWeight, image: params.imageWeight }));
    }
    const result = await kMeansInThread(rows, params.k, params.seed);
    await this.images.assignClusters(ctx, images.map((i) => i.id), result.assignments);
    await this.runs.mergeParams(run.id, { clusters: result.k, iterations: result.iterations, converged: result.converged });
  }

  private async loadImages(ctx: RequestContext, run: Run, model: string): Promise<ClusterImage[]> {
    const rows = await this.images.figuresByIds(ctx, await this.runs.targetIds(run.id));
    return rows.map((r) => {
      const text = clusteringText(r.caption, r.mentions);
      return { id: r.id, text, textHash: crypto.createHash('sha256').update(`${model}\n${text}`).digest('hex'), contentHash: r.contentHash };
    });
  }

  /** Cached vectors, plus the missing ones from the embeddings endpoint in batches, stored as they arrive. */
  private async embeddings(run: Run, params: ClusteringParams, images: ClusterImage[], control: RunControl): Promise<Map<string, number[]>> {
    const byHash = new Map<string, number[]>();
    const hashes = [...new Set(images.map((i) => i.textHash))];
    const cached: { text_hash: string; vector: number[] }[] = await this.ds.query(
      `SELECT text_hash, vector FROM image_embeddings WHERE project_id = $1 AND model = $2 AND text_hash = ANY($3::char(64)[])`,
      [run.projectId, params.embeddingModel, hashes],
    );
    for (const row of cached) byHash.set(row.text_hash, row.vector.map(Number));
    const textOf = new Map(images.map((i) => [i.textHash, i.text]));
    const imagesPerHash = new Map<string, number>();
    for (const image of images) imagesPerHash.set(image.textHash, (imagesPerHash.get(image.textHash) ?? 0) + 1);
    const missing = hashes.filter((h) => !byHash.has(h) && textOf.get(h));
    const readyAtStart = images.length - missing.reduce((n, h) => n + imagesPerHash.get(h)!, 0);
    if (readyAtStart) await this.runs.addProgress(this.ds.manager, run.id, { done: readyAtStart, outcome: EMBEDDED });
    const batches = chunk(missing, EMBEDDING_BATCH);
    const limits = paceOf(run.id, params.limits);
    await forEachModelCall(this.llm, run.id, batches, params.limits.concurrency, control, async (batch) => {
      const { reply } = await this.llm.embed(batch.map((h) => textOf.get(h)!), limits, control.signal);
      await this.ds.transaction(async (em) => {
        await em.query(
          `INSERT INTO image_embeddings (project_id, model, text_hash, vector) SELECT $1, $2, h, string_to_array(v, ',')::real[] FROM unnest($3::text[], $4::text[]) AS t(h, v) ON CONFLICT DO NOTHING`,
          [run.projectId, params.embeddingModel, batch, reply.vectors.map((v) => v.join(','))],
        );
        const usage = { promptTokens: reply.promptTokens, completionTokens: 0 };
        const done = batch.reduce((n, h) => n + imagesPerHash.get(h)!, 0);
        await this.runs.addProgress(em, run.id, { done, outcome: EMBEDDED, ...usage, costUsd: this.llm.client?.costUsd({ ...usage, embedding: true }) ?? 0 });
      });
      batch.forEach((h, i) => byHash.set(h, reply.vectors[i]));
    });
    return byHash;
  }

  private async imageFeatures(projectId: string, image: ClusterImage): Promise<Float32Array> {
    if (!image.contentHash) return missingImageFeatures();
    const file = await this.images.readFile({ projectId, contentHash: image.contentHash } as Image, 'original');
    if (!file) return missingImageFeatures();
    try {
      return await imageFeatureVector(file.bytes);
    } catch (error) {
      logger.warn('image features failed; using zeros', { imageId: image.id, error: String(error) });
      return missingImageFeatures();
    }
  }
}

function chunk<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
