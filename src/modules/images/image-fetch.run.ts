import { z } from 'zod';
import { RunKind } from '../runs/run.entity';
import { RunsService } from '../runs/runs.service';
import { forEachConcurrent, ParsedRunKind, RunAttempt, RunControl } from '../runs/run-executor';
import { UserErrorsException } from '../../platform/user-errors';
import { ImagesService, PendingFetch } from './images.service';

const imageFetchParamsSchema = z.object({ concurrency: z.number().int().min(1).max(64).default(8) });
export type ImageFetchParams = z.infer<typeof imageFetchParamsSchema>;

/** The outcome of an image whose bytes arrived, in the run's countsByStatus; failures count under their error code. */
export const FETCHED = 'FETCHED';

/** The run failure's item key for an image: a client maps it back to the image (and the image to its record's pair id). */
export const imageFetchItemKey = (imageId: string) => `image:${imageId}`;

/**
 * Fetches the bytes of images imported by URL, through the same SSRF-safe fetcher, limits and
 * decode checks as uploadImage. Exactly once: an image that has bytes is settled (attached in the
 * same transaction that counted it), a failed one has its run failure, so a resumed run fetches
 * only the rest. Each failure is a run failure keyed `image:<id>`, its reason naming the pair id.
 */
export class ImageFetchRun extends ParsedRunKind<ImageFetchParams> {
  readonly kind = RunKind.IMAGE_FETCH;
  protected readonly paramsSchema = imageFetchParamsSchema;

  constructor(
    private readonly images: ImagesService,
    private readonly runs: RunsService,
  ) {
    super();
  }

  protected async attempt({ run, params, ctx }: RunAttempt<ImageFetchParams>, control: RunControl): Promise<void> {
    const failed = await this.runs.failedItemKeys(run.id);
    const pending = (await this.images.pendingFetches(ctx, await this.runs.targetIds(run.id))).filter((p) => !failed.has(imageFetchItemKey(p.id)));
    await forEachConcurrent(pending, params.concurrency, control.signal, async (image) => {
      try {
        const file = await this.images.fetchAndInspect(image.sourceUrl, ['image', image.id]);
        await this.images.attachFetchedBytes(ctx, image.id, file, (em) => this.runs.addProgress(em, run.id, { done: 1, outcome: FETCHED }));
        control.progressed();
      } catch (error) {
        if (!(error instanceof UserErrorsException)) throw error;
        await this.fail(run, image, error);
      }
    });
  }

  private async fail(run: RunAttempt<ImageFetchParams>['run'], image: PendingFetch, error: UserErrorsException): Promise<void> {
    const code = error.errors[0]?.code ?? 'INVALID';
    const reason = `${code}: pair ${image.pairId ?? '(none)'}, ${image.sourceUrl}: ${error.message}`;
    await this.runs.recordFailure(run, { itemKey: imageFetchItemKey(image.id), reason, attempts: 1 }, { outcome: code });
  }
}
