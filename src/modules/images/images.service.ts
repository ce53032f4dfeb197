import { Brackets, DataSource, EntityManager, SelectQueryBuilder } from 'typeorm';
import { RequestContext } from '../projects/request-context';
import { BlobStorage } from '../../platform/storage';
import { applyKeyset, ConnectionShape, PageArgs, SortDirection, toConnection } from '../../platform/pagination';
import { PlainRows } from '../../platform/plain-rows';
import { UserErrorCode, userError, UserErrorsException } from '../../platform/user-errors';
import { expectGlobalId } from '../../platform/ids';
import { Image } from './image.entity';
import { ImageSource, Modality } from './modality';
import { ImageFilter, ImageMetadataInput, ImageOrder, ImageSelectionInput } from './images.inputs';
import { ImageLimits, inspectImage, InspectedImage, makeThumbnail, toModelInput } from './image-bytes';
import { checkUrlWithoutFetching, SafeFetcher } from '../../platform/safe-fetch';
import { createImageFetcher, fetchImageBytes, ImageFetchSettings } from './image-url';

export type ImageVariant = 'original' | 'thumbnail';

/** Rows per INSERT: 16 parameters a row stays far below Postgres's 65,535 parameters a statement. */
const UPSERT_CHUNK = 1000;
const METADATA_COLUMNS = ['pmid', 'fig_label', 'fig_id', 'graphic_ref', 'file_name', 'caption', 'mentions', 'modalities', 'source_url'];

/** What a vision-model prompt needs of an image. */
export interface ModelFigure {
  caption: string;
  mentions: string[];
  dataUrl: string | null;
}

export interface ImageFile {
  bytes: Buffer;
  contentType: string;
}

const originalKey = (projectId: string, hash: string) => `projects/${projectId}/images/${hash}`;
const thumbnailKey = (projectId: string, hash: string, size: number) => `projects/${projectId}/thumbnails/${size}/${hash}.webp`;
const modelInputKey = (projectId: string, hash: string, maxSide: number) => `projects/${projectId}/model-input/${maxSide}/${hash}`;

/** Normalised metadata for an image row, whatever the source. */
export interface ImageRecord {
  pmid?: string | null;
  pairId?: string | null;
  figLabel?: string | null;
  figId?: string | null;
  graphicRef?: string | null;
  fileName?: string | null;
  caption?: string | null;
  mentions?: string[] | null;
  modalities?: Modality[] | null;
  /** For images imported by URL: where an IMAGE_FETCH run fetches their bytes. */
  sourceUrl?: string | null;
}

/** An image imported by URL that still has no bytes: what an IMAGE_FETCH run works on. */
export interface PendingFetch {
  id: string;
  pairId: string | null;
  sourceUrl: string;
}

export class ImagesService {
  constructor(
    private readonly ds: DataSource,
    private readonly storage: BlobStorage,
    private readonly limits: ImageLimits,
    private readonly thumbnailSize: number,
    fetchSettings?: Omit<ImageFetchSettings, 'maxBytes'>,
  ) {
    this.fetcher = createImageFetcher({ allowPrivateNetworks: false, timeoutMs: 15_000, maxRedirects: 3, ...fetchSettings, maxBytes: limits.maxBytes });
    this.allowPrivateNetworks = fetchSettings?.allowPrivateNetworks ?? false;
  }

  private readonly allowPrivateNetworks: boolean;

  private readonly fetcher: SafeFetcher;

  async list(ctx: RequestContext, page: PageArgs, filter?: ImageFilter | null, order?: ImageOrder | null): Promise<ConnectionShape<Image>> {
    const base = () => this.filtered(ctx, filter);
    const keyset = { sortExpr: 'image.createdAt', idExpr: 'image.id', direction: order?.direction ?? SortDirection.DESC };
    const rows = await PlainRows.of(this.ds, Image).getMany(applyKeyset(base(), keyset, page));
    return toConnection(rows, page, (i) => ({ value: i.createdAt, id: i.id }), () => base().getCount());
  }

  async findById(ctx: RequestContext, id: string): Promise<Image | null> {
    return this.ds.getRepository(Image).findOneBy({ id, projectId: ctx.projectId });
  }

  async findByIds(ctx: RequestContext, ids: readonly string[]): Promise<Image[]> {
    if (ids.length === 0) return [];
    // Every nested `image` of a page comes through here (imageByIdLoader): SQL written once, plain rows.
    const rows = PlainRows.of(this.ds, Image);
    return rows.query(`SELECT ${rows.select('i')} FROM images i WHERE i.id = ANY($1::uuid[]) AND i.project_id = $2`, [[...ids], ctx.projectId], 'i');
  }

  /**
   * Stores an uploaded image: validated and hashed first, then the content-addressed bytes, then the
   * row. The same bytes twice in a project answer DUPLICATE with no second row.
   */
  async upload(ctx: RequestContext, bytes: Buffer, fileName: string | null, metadata: (ImageMetadataInput & { sourceUrl?: string }) | null | undefined, origin = { source: ImageSource.UPLOAD, field: ['input', 'file'] }): Promise<Image> {
    const inspected = await inspectImage(bytes, this.limits, origin.field);
    await this.assertNotDuplicate(this.ds.manager, ctx.projectId, inspected.contentHash, metadata?.pairId ?? null, origin.field);
    await this.storeBytes(ctx.projectId, bytes, inspected);
    const row = this.newImage(ctx.projectId, origin.source, { ...metadata, fileName }, inspected);
    try {
      return await this.ds.getRepository(Image).save(row);
    } catch (error) {
      // A concurrent upload of the same bytes won the unique index between our check and insert.
      if ((error as { code?: string }).code === '23505') await this.assertNotDuplicate(this.ds.manager, ctx.projectId, inspected.contentHash, metadata?.pairId ?? null, origin.field);
      throw error;
    }
  }

  /** uploadImage with a `url`: the bytes fetched (SSRF-guarded, size- and time-limited), then the same checks as a file. */
  async uploadFromUrl(ctx: RequestContext, url: string, metadata: ImageMetadataInput | null | undefined): Promise<Image> {
    const bytes = await fetchImageBytes(this.fetcher, url, ['input', 'url']);
    return this.upload(ctx, bytes, url, { ...metadata, sourceUrl: url }, { source: ImageSource.URL, field: ['input', 'url'] });
  }

  /** For importers: the bytes at `url` (or a user error on `field`), validated like an uploaded file. */
  async fetchAndInspect(url: string, field: string[]): Promise<{ bytes: Buffer; inspected: InspectedImage }> {
    const bytes = await fetchImageBytes(this.fetcher, url, field);
    return { bytes, inspected: await inspectImage(bytes, this.limits, field) };
  }

  /**
   * An IMAGE_FETCH run's targets: of these images, those imported by URL that have no bytes yet.
   * A query, so the run freezes it in the importer's transaction.
   */
  awaitingFetch(ctx: RequestContext, ids: string[]): SelectQueryBuilder<object> {
    return this.ds
      .createQueryBuilder()
      .select('i.id', 'id')
      .from(Image, 'i')
      .where('i.projectId = :p', { p: ctx.projectId })
      .andWhere('i.id IN (:...ids)', { ids: ids.length ? ids : ['00000000-0000-0000-0000-000000000000'] })
      .andWhere('i.contentHash IS NULL AND i.sourceUrl IS NOT NULL');
  }

  /** Whether any of these images still waits for its bytes, read in the caller's transaction. */
  async anyAwaitingFetch(em: EntityManager, ctx: RequestContext, ids: string[]): Promise<boolean> {
    if (ids.length === 0) return false;
    const [sql, parameters] = this.awaitingFetch(ctx, ids).getQueryAndParameters();
    const [{ any }]: { any: boolean }[] = await em.query(`SELECT EXISTS (${sql}) AS any`, parameters);
    return any;
  }

  /** Of these images, those still waiting for their bytes (the rest are settled), in id order. */
  async pendingFetches(ctx: RequestContext, ids: readonly string[]): Promise<PendingFetch[]> {
    if (ids.length === 0) return [];
    const rows: { id: string; pair_id: string | null; source_url: string }[] = await this.ds.query(
      `SELECT id, pair_id, source_url FROM images WHERE project_id = $1 AND id = ANY($2::uuid[]) AND content_hash IS NULL AND source_url IS NOT NULL ORDER BY id`,
      [ctx.projectId, ids],
    );
    return rows.map((r) => ({ id: r.id, pairId: r.pair_id, sourceUrl: r.source_url }));
  }

  /**
   * Attaches fetched, inspected bytes to an image that has none, and runs `alsoInTransaction` (the
   * run's counters) in the same transaction only when it did: an image gets its bytes, and is
   * counted, exactly once. Bytes another image of the project already holds are DUPLICATE.
   */
  async attachFetchedBytes(
    ctx: RequestContext,
    imageId: string,
    file: { bytes: Buffer; inspected: InspectedImage },
    alsoInTransaction: (em: EntityManager) => Promise<void>,
  ): Promise<boolean> {
    const field = ['image', imageId];
    await this.assertNotDuplicateOf(ctx.projectId, imageId, file.inspected.contentHash, field);
    await this.storeBytes(ctx.projectId, file.bytes, file.inspected);
    const i = file.inspected;
    try {
      return await this.ds.transaction(async (em) => {
        const rows: unknown[] = await em.query(
          `WITH attached AS (
             UPDATE images SET content_hash = $3, mime_type = $4, width = $5, height = $6, byte_size = $7, updated_at = now()
              WHERE id = $1 AND project_id = $2 AND content_hash IS NULL RETURNING id)
           SELECT id FROM attached`,
          [imageId, ctx.projectId, i.contentHash, i.mimeType, i.width, i.height, i.byteSize],
        );
        if (rows.length) await alsoInTransaction(em);
        return rows.length > 0;
      });
    } catch (error) {
      // Another image took the same bytes between our check and the update.
      if ((error as { code?: string }).code === '23505') await this.assertNotDuplicateOf(ctx.projectId, imageId, i.contentHash, field);
      throw error;
    }
  }

  private async assertNotDuplicateOf(projectId: string, imageId: string, contentHash: string, field: string[]): Promise<void> {
    const other = await this.ds.getRepository(Image).findOne({ where: { projectId, contentHash }, select: { id: true, pairId: true } });
    if (other && other.id !== imageId) {
      throw new UserErrorsException([userError(UserErrorCode.DUPLICATE, `The same bytes are already stored for image ${other.pairId ?? other.id}`, field)]);
    }
  }

  /** For importers: a URL's syntax, scheme, credentials and literal address checked without fetching it (SafeFetchError when wrong). */
  checkUrl(url: string): void {
    checkUrlWithoutFetching(url, this.allowPrivateNetworks);
  }

  /** For importers: validates bytes without writing, so a whole import can be checked before its transaction. */
  inspect(bytes: Buffer, field: string[]): Promise<InspectedImage> {
    return inspectImage(bytes, this.limits, field);
  }

  /**
   * Inserts or updates image rows by PMC pair id inside the caller's transaction, a chunk of rows
   * per statement. Metadata is overwritten; bytes are attached only to rows that have none, so an
   * image's content never changes once stored. Returns the id of each pair id and how many rows
   * were new.
   */
  async upsertRecords(
    em: EntityManager,
    ctx: RequestContext,
    records: { record: ImageRecord & { pairId: string }; file?: { bytes: Buffer; inspected: InspectedImage }; source?: ImageSource }[],
  ): Promise<{ idByPair: Map<string, string>; created: number }> {
    for (const r of records) if (r.file) await this.storeBytes(ctx.projectId, r.file.bytes, r.file.inspected);
    const idByPair = new Map<string, string>();
    let created = 0;
    for (let start = 0; start < records.length; start += UPSERT_CHUNK) {
      const chunk = records.slice(start, start + UPSERT_CHUNK);
      const result = await em
        .createQueryBuilder()
        .insert()
        .into(Image)
        .values(chunk.map(({ record, file, source }) => this.newImage(ctx.projectId, source ?? ImageSource.IMPORT, record, file?.inspected ?? null)))
        .orUpdate([...METADATA_COLUMNS, 'updated_at'], ['project_id', 'pair_id'], { indexPredicate: 'pair_id IS NOT NULL' })
        .updateEntity(false)
        // xmax is 0 on a row this statement inserted, and set on one it updated.
        .returning('id, pair_id, (xmax = 0) AS inserted')
        .execute();
      for (const row of result.raw as { id: string; pair_id: string; inserted: boolean }[]) {
        idByPair.set(row.pair_id, row.id);
        if (row.inserted) created++;
      }
    }
    const withFiles = records.filter((r) => r.file);
    if (withFiles.length) {
      const column = <T>(pick: (i: InspectedImage) => T) => withFiles.map((r) => pick(r.file!.inspected));
      await em.query(
        `UPDATE images i SET content_hash = v.hash, mime_type = v.mime, width = v.width, height = v.height, byte_size = v.size, updated_at = now()
           FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int[], $5::int[], $6::int[]) AS v(id, hash, mime, width, height, size)
          WHERE i.id = v.id AND i.content_hash IS NULL`,
        [withFiles.map((r) => idByPair.get(r.record.pairId)), column((i) => i.contentHash), column((i) => i.mimeType), column((i) => i.width), column((i) => i.height), column((i) => i.byteSize)],
      );
    }
    return { idByPair, created };
  }

  /** Stored images that hold any of these pair ids or content hashes: what an import could collide with. */
  async findByPairIdsOrHashes(ctx: RequestContext, pairIds: string[], hashes: string[]): Promise<Pick<Image, 'id' | 'pairId' | 'contentHash'>[]> {
    if (pairIds.length === 0 && hashes.length === 0) return [];
    return this.ds
      .getRepository(Image)
      .createQueryBuilder('i')
      .select(['i.id', 'i.pairId', 'i.contentHash'])
      .where('i.projectId = :p', { p: ctx.projectId })
      .andWhere('(i.pairId = ANY(:pairIds) OR i.contentHash = ANY(:hashes))', { pairIds, hashes })
      .getMany();
  }

  async readFile(image: Image, variant: ImageVariant): Promise<ImageFile | null> {
    if (!image.contentHash) return null;
    if (variant === 'original') return this.storage.get(originalKey(image.projectId, image.contentHash));
    const key = thumbnailKey(image.projectId, image.contentHash, this.thumbnailSize);
    const cached = await this.storage.get(key);
    if (cached) return cached;
    const original = await this.storage.get(originalKey(image.projectId, image.contentHash));
    if (!original) return null;
    const thumbnail = await makeThumbnail(original.bytes, this.thumbnailSize);
    await this.storage.put(key, thumbnail, 'image/webp');
    return { bytes: thumbnail, contentType: 'image/webp' };
  }

  /** Original bytes of a project's images by content hash, in one read; hashes without stored bytes are absent. */
  async originalsByHash(projectId: string, contentHashes: readonly string[]): Promise<Map<string, Buffer>> {
    const stored = await this.storage.getMany(contentHashes.map((hash) => originalKey(projectId, hash)));
    const found = new Map<string, Buffer>();
    for (const hash of contentHashes) {
      const bytes = stored.get(originalKey(projectId, hash));
      if (bytes) found.set(hash, bytes);
    }
    return found;
  }

  /**
   * The image as a base64 data URL for a vision model, downscaled when over `maxSide`. Downscaled
   * bytes are stored, so every run and every sample reuses them. Null without bytes.
   */
  async modelDataUrl(image: Pick<Image, 'projectId' | 'contentHash'>, maxSide: number): Promise<string | null> {
    if (!image.contentHash) return null;
    const key = modelInputKey(image.projectId, image.contentHash, maxSide);
    let input = await this.storage.get(key);
    if (!input) {
      const original = await this.storage.get(originalKey(image.projectId, image.contentHash));
      if (!original) return null;
      input = await toModelInput(original.bytes, maxSide);
      if (input.bytes !== original.bytes) await this.storage.put(key, input.bytes, input.contentType);
    }
    return `data:${input.contentType};base64,${input.bytes.toString('base64')}`;
  }

  /** An image's caption, mentions and model data URL (null without bytes); null when it is not in the project. */
  async modelFigure(projectId: string, imageId: string, maxSide: number): Promise<ModelFigure | null> {
    const image = await this.ds.getRepository(Image).findOne({ where: { id: imageId, projectId }, select: { projectId: true, caption: true, mentions: true, contentHash: true } });
    if (!image) return null;
    return { caption: image.caption, mentions: image.mentions, dataUrl: await this.modelDataUrl(image, maxSide) };
  }

  /** Caption, mentions and content hash of the project's images with these ids, in one read (for workers). */
  async figuresByIds(ctx: RequestContext, ids: readonly string[]): Promise<ImageText[]> {
    const rows: { id: string; caption: string; mentions: string[]; content_hash: string | null; created_at: Date }[] = await this.ds.query(
      `SELECT id, caption, to_json(mentions) AS mentions, content_hash, created_at FROM images WHERE project_id = $1 AND id = ANY($2::uuid[]) ORDER BY created_at, id`,
      [ctx.projectId, ids],
    );
    return rows.map((r) => ({ id: r.id, caption: r.caption, mentions: r.mentions, contentHash: r.content_hash }));
  }

  /** How many of the project's images each cluster holds, by cluster id. */
  async clusterSizes(ctx: RequestContext): Promise<{ clusterId: number; size: number }[]> {
    const rows: { cluster_id: number; size: string }[] = await this.ds.query(
      `SELECT cluster_id, count(*) AS size FROM images WHERE project_id = $1 AND cluster_id IS NOT NULL GROUP BY cluster_id ORDER BY cluster_id`,
      [ctx.projectId],
    );
    return rows.map((r) => ({ clusterId: r.cluster_id, size: Number(r.size) }));
  }

  /** Writes a clustering result: each image's cluster, in one statement. */
  async assignClusters(ctx: RequestContext, ids: readonly string[], clusterIds: readonly number[]): Promise<void> {
    await this.ds.query(
      `UPDATE images i SET cluster_id = a.cluster_id, updated_at = now() FROM unnest($1::uuid[], $2::int[]) AS a(id, cluster_id) WHERE i.id = a.id AND i.project_id = $3`,
      [ids, clusterIds, ctx.projectId],
    );
  }

  /** The images a run works on: ids or a filter, scoped to the project; an empty selection is an input error, not an empty run. */
  async selectForRun(ctx: RequestContext, selection: ImageSelectionInput, field: string[]) {
    if (selection.imageIds && selection.filter) throw new UserErrorsException([userError(UserErrorCode.INVALID, 'Give imageIds or filter, not both', field)]);
    const ids = selection.imageIds ? [...new Set(selection.imageIds.map((id) => expectGlobalId(id, 'Image', [...field, 'imageIds'].join('.'))))] : null;
    const query = this.selectIds(ctx, selection.filter, ids);
    const count = await query.getCount();
    if (ids && count !== ids.length) throw new UserErrorsException([userError(UserErrorCode.NOT_FOUND, `${ids.length - count} of the images were not found`, [...field, 'imageIds'])]);
    if (!count) throw new UserErrorsException([userError(UserErrorCode.INVALID, 'The selection matches no image', field)]);
    return query;
  }

  /** A query for the ids of the images a filter selects, for freezing a run's targets. */
  selectIds(ctx: RequestContext, filter?: ImageFilter | null, ids?: string[] | null) {
    const qb = this.filtered(ctx, filter).select('image.id', 'id');
    if (ids) qb.andWhere('image.id = ANY(:ids::uuid[])', { ids });
    return qb;
  }

  private filtered(ctx: RequestContext, filter?: ImageFilter | null) {
    const qb = this.ds.getRepository(Image).createQueryBuilder('image').where('image.projectId = :projectId', { projectId: ctx.projectId });
    if (filter?.modalities?.length) qb.andWhere('image.modalities && :modalities::modality[]', { modalities: filter.modalities });
    if (filter?.captionSearch?.trim()) {
      qb.andWhere(`to_tsvector('english', image.caption) @@ websearch_to_tsquery('english', :search)`, { search: filter.captionSearch.trim() });
    }
    if (filter?.clusterId != null) qb.andWhere('image.clusterId = :clusterId', { clusterId: filter.clusterId });
    if (filter?.hasBytes != null) qb.andWhere(filter.hasBytes ? 'image.contentHash IS NOT NULL' : 'image.contentHash IS NULL');
    if (filter?.hasCandidates != null) {
      const exists = 'EXISTS (SELECT 1 FROM candidates c WHERE c.image_id = image.id AND c.project_id = image.project_id)';
      qb.andWhere(new Brackets((b) => b.where(filter.hasCandidates ? exists : `NOT ${exists}`)));
    }
    return qb;
  }

  private async assertNotDuplicate(em: EntityManager, projectId: string, contentHash: string, pairId: string | null, bytesField = ['input', 'file']): Promise<void> {
    const byHash = await em.findOneBy(Image, { projectId, contentHash });
    if (byHash) {
      throw new UserErrorsException([userError(UserErrorCode.DUPLICATE, `These bytes are already stored as image ${byHash.globalId}`, bytesField)]);
    }
    if (pairId && (await em.findOneBy(Image, { projectId, pairId }))) {
      throw new UserErrorsException([userError(UserErrorCode.DUPLICATE, `An image with pair id ${pairId} exists`, ['input', 'metadata', 'pairId'])]);
    }
  }

  /**
   * Content-addressed, so writing before the row is safe: a retry reuses the same key, and bytes
   * whose row never committed are unreachable rather than wrong.
   */
  private storeBytes(projectId: string, bytes: Buffer, inspected: InspectedImage): Promise<void> {
    return this.storage.put(originalKey(projectId, inspected.contentHash), bytes, inspected.mimeType);
  }

  private newImage(projectId: string, source: ImageSource, record: ImageRecord, inspected: InspectedImage | null): Image {
    return this.ds.getRepository(Image).create({
      projectId,
      source,
      ...this.metadataColumns(record),
      ...(inspected ? this.byteColumns(inspected) : { contentHash: null, mimeType: null, width: null, height: null, byteSize: null }),
      clusterId: null,
    });
  }

  private metadataColumns(r: ImageRecord) {
    return {
      pmid: r.pmid ?? null,
      pairId: r.pairId ?? null,
      figLabel: r.figLabel ?? null,
      figId: r.figId ?? null,
      graphicRef: r.graphicRef ?? null,
      fileName: r.fileName ?? null,
      sourceUrl: r.sourceUrl ?? null,
      caption: r.caption ?? '',
      mentions: r.mentions ?? [],
      modalities: r.modalities?.length ? [...new Set(r.modalities)] : [Modality.OTHER],
    };
  }

  private byteColumns(i: InspectedImage) {
    return { contentHash: i.contentHash, mimeType: i.mimeType, width: i.width, height: i.height, byteSize: i.byteSize };
  }
}

/** How a run records which images it was asked for. */
export function imageSelectionParams(selection: ImageSelectionInput): Record<string, unknown> {
  if (selection.imageIds) return { imageIds: selection.imageIds };
  return { filter: { ...(selection.filter ?? {}) } };
}

/** What workers read of an image besides its bytes. */
export interface ImageText {
  id: string;
  caption: string;
  mentions: string[];
  contentHash: string | null;
}
