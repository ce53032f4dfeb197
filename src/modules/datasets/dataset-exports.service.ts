import type { Pool, PoolClient } from 'pg';
import tar from 'tar-stream';
import { DataSource } from 'typeorm';
import { notFound } from '../../platform/errors';
import { isUuid } from '../../platform/ids';
import { RequestContext } from '../projects/request-context';
import { Image } from '../images/image.entity';
import { ImagesService } from '../images/images.service';
import { DatasetsService } from './datasets.service';
import { Dataset } from './dataset.entity';
import { buildDatasetCard, renderCardJson, renderCardMarkdown } from './dataset-card';
import {
  buildPreferencePairs,
  EXPORT_CONTENT_TYPES,
  ExportFormat,
  exportFileName,
  imagePath,
  CARD_JSON_FILE,
  CARD_MARKDOWN_FILE,
  MISSING_FILE,
  missingFileSize,
  MissingReason,
  missingLine,
  writeTrlLines,
  toTrlVisionRecord,
  TrlPair,
  TrlSourceRow,
} from './dataset-export.format';
import { CONVERSATION_JOIN, JSONL_LINE_SELECT, LLAVA_LINE_SELECT, SqlQuery } from './dataset-export.lines';
import { ExportBytes } from './export-bytes';

/** An export ready to stream: headers first, then the body, produced as the client reads it. */
export interface DatasetExport {
  dataset: Dataset;
  fileName: string;
  contentType: string;
  /** The bytes. Nothing is read before the first pull; `signal` stops the read when the client goes away. */
  body(signal: AbortSignal): AsyncGenerator<Buffer>;
}

export type { SqlQuery };

/** Bytes handed to the HTTP response at a time: small records are joined so that writes stay few. */
const CHUNK_BYTES = 64 * 1024;
/** Rows per FETCH: bounds what a text export holds (a few hundred rows of a few KB). */
const TEXT_BATCH_ROWS = 200;
/** Images listed per query of the archive; no connection is held while their bytes are read and sent. */
const IMAGE_PAGE = 100;
const FIRST_UUID = '00000000-0000-0000-0000-000000000000';

/** A dataset's items with candidate and image; a row pointing into another project is left out. */
const ITEMS_FROM = `
  FROM dataset_items di
  JOIN candidates c ON c.id = di.candidate_id AND c.project_id = di.project_id
  JOIN images i ON i.id = c.image_id AND i.project_id = di.project_id`;
const ITEMS_WHERE = `WHERE di.dataset_id = $1 AND di.project_id = $2`;

/** Items with their candidate and image, in rank order (the (dataset_id, rank) index, joins by key). */
export function itemsQuery(datasetId: string, projectId: string): SqlQuery {
  return {
    text: `SELECT di.rank, di.score, c.id AS "candidateId", c.rounds, c.status, c.form, c.run_id AS "runId", c.model,
                  c.prompt_template_version AS "promptTemplateVersion", c.sample_index AS "sampleIndex",
                  i.id AS "imageId", i.pair_id AS "pairId", i.pmid, i.fig_label AS "figLabel", i.caption, i.mentions,
                  i.modalities::text[] AS modalities, i.content_hash AS "contentHash", i.mime_type AS "mimeType", i.cluster_id AS "clusterId"
           ${ITEMS_FROM}
           ${ITEMS_WHERE}
           ORDER BY di.rank`,
    values: [datasetId, projectId],
  };
}

/**
 * The LLaVA (`line`) or JSONL (`head`, `score`, `tail`) records of the items in rank order, written
 * by Postgres as JSON text (dataset-export.lines.ts); the same items and order as `itemsQuery`.
 */
export function itemLinesQuery(datasetId: string, projectId: string, format: 'llava.json' | 'jsonl'): SqlQuery {
  return {
    text: `SELECT ${format === 'jsonl' ? JSONL_LINE_SELECT : LLAVA_LINE_SELECT}
           ${ITEMS_FROM}
           ${CONVERSATION_JOIN}
           ${ITEMS_WHERE}
           ORDER BY di.rank`,
    values: [datasetId, projectId],
  };
}

const author = `coalesce(p.annotator_id::text, p.judge_model)`;

/**
 * Items in rank order with the preferences on their candidate, aggregated in SQL: round-level ones
 * by a LATERAL over the (project_id, candidate_id) index, candidate-vs-candidate ones (either side
 * may be this item) grouped once up front and hash-joined. One statement, no N+1.
 */
export function trlQuery(datasetId: string, projectId: string): SqlQuery {
  const pairwiseBetweenCandidates = (self: string, other: string, selfWins: string) => `
    SELECT p.id, p.created_at, p.source, ${author} AS author, p.${self} AS self_id, p.${other} AS other_id,
           CASE p.choice WHEN '${selfWins}' THEN 'self' WHEN 'TIE' THEN 'tie' ELSE 'other' END AS winner
      FROM preferences p
     WHERE p.project_id = $2 AND p.kind = 'PAIRWISE' AND p.other_candidate_id IS NOT NULL`;
  return {
    text: `WITH candidate_prefs AS (
             SELECT s.self_id,
                    json_agg(json_build_object('source', s.source, 'author', s.author, 'winner', s.winner, 'otherCandidateId', o.id,
                                               'otherImageId', o.image_id, 'otherRounds', o.rounds, 'otherRank', od.rank)
                             ORDER BY s.created_at, s.id) AS prefs
               FROM (${pairwiseBetweenCandidates('candidate_id', 'other_candidate_id', 'A')}
                     UNION ALL
                     ${pairwiseBetweenCandidates('other_candidate_id', 'candidate_id', 'B')}) s
               JOIN dataset_items sd ON sd.dataset_id = $1 AND sd.candidate_id = s.self_id
               JOIN candidates o ON o.id = s.other_id AND o.project_id = $2
               LEFT JOIN dataset_items od ON od.dataset_id = $1 AND od.candidate_id = s.other_id
              GROUP BY s.self_id
           )
           SELECT di.rank, c.id AS "candidateId", c.image_id AS "imageId", i.content_hash AS "contentHash", i.mime_type AS "mimeType", c.rounds,
                  rp.prefs AS "roundPrefs", cp.prefs AS "candidatePrefs"
           ${ITEMS_FROM}
           LEFT JOIN LATERAL (
             SELECT json_agg(json_build_object('source', p.source, 'kind', p.kind, 'author', ${author}, 'roundIndex', p.round_index,
                                               'answerIndex', p.answer_index, 'choice', p.choice, 'rating', p.rating, 'accepted', p.accepted)
                             ORDER BY p.created_at, p.id) AS prefs
               FROM preferences p
              WHERE p.project_id = $2 AND p.candidate_id = c.id AND p.other_candidate_id IS NULL AND p.round_index IS NOT NULL
           ) rp ON true
           LEFT JOIN candidate_prefs cp ON cp.self_id = c.id
           ${ITEMS_WHERE}
           ORDER BY di.rank`,
    values: [datasetId, projectId],
  };
}

const IMAGE_OF_ITEMS = `
  i.project_id = $2 AND EXISTS (
    SELECT 1 FROM candidates c JOIN dataset_items di ON di.candidate_id = c.id AND di.project_id = c.project_id
     WHERE di.dataset_id = $1 AND c.project_id = $2 AND c.image_id = i.id)`;

/** A page of the distinct images of the items that have bytes, by id after $3 (keyset). */
export function imagesWithFilePage(datasetId: string, projectId: string, afterId: string, limit: number): SqlQuery {
  return {
    text: `SELECT i.id, i.content_hash AS "contentHash", i.mime_type AS "mimeType"
             FROM images i
            WHERE ${IMAGE_OF_ITEMS} AND i.content_hash IS NOT NULL AND i.id > $3
            ORDER BY i.id LIMIT $4`,
    values: [datasetId, projectId, afterId, limit],
  };
}

/** The distinct images of the items known by their record only, each with how many there are. */
export function imagesWithoutFileQuery(datasetId: string, projectId: string): SqlQuery {
  return {
    text: `SELECT i.id, (count(*) OVER ())::int AS total FROM images i WHERE ${IMAGE_OF_ITEMS} AND i.content_hash IS NULL ORDER BY i.id`,
    values: [datasetId, projectId],
  };
}

/**
 * Rows of one statement through a server-side cursor on one pooled connection, a batch of
 * `batchSize` rows per FETCH, one batch ahead of the consumer: a slow consumer holds back the
 * reads, so memory holds two batches whatever the size of the result. Batches rather than rows, so
 * that a format handles a batch per step (an async generator step per row cost more than a line).
 * `rowMode: 'array'` gives each row as an array of its columns (no object per row).
 * The connection goes back to the pool however the iteration ends; one left mid-transaction (error,
 * abort, early return) is discarded by the pool, which ends the transaction, rather than reused.
 *
 * A plain DECLARE / FETCH rather than pg-query-stream: pg-cursor requires `pg/lib/result.js`, which
 * ts-node's experimental resolver (tsconfig, used by `npm start`) resolves to `result.js.js`.
 */
export async function* streamBatches<T>(
  ds: DataSource,
  query: SqlQuery,
  signal: AbortSignal,
  batchSize: number,
  rowMode?: 'array',
): AsyncGenerator<T[]> {
  signal.throwIfAborted();
  const pool = (ds.driver as unknown as { master: Pool }).master;
  const client: PoolClient = await pool.connect();
  let connectionError: Error | null = null;
  const onError = (error: Error) => (connectionError = error);
  client.on('error', onError);
  let clean = false;
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    await client.query(`DECLARE export_rows NO SCROLL CURSOR FOR ${query.text}`, query.values);
    const fetch = () => {
      const text = `FETCH FORWARD ${batchSize} FROM export_rows`;
      const next: Promise<{ rows: unknown[] }> = rowMode ? client.query({ text, rowMode }) : client.query(text);
      next.catch(() => {}); // awaited below, unless the consumer stops first (the connection is then discarded)
      return next;
    };
    // The next batch is fetched while the consumer works on this one: the database and the
    // formatting overlap, and memory holds two batches.
    for (let pending = fetch(); ; ) {
      const { rows } = await pending;
      const more = rows.length === batchSize;
      if (more) pending = fetch();
      signal.throwIfAborted();
      if (rows.length) yield rows as T[];
      if (!more) break;
    }
    await client.query('CLOSE export_rows');
    await client.query('COMMIT');
    clean = true;
  } finally {
    client.off('error', onError);
    client.release(clean && !connectionError ? undefined : (connectionError ?? new Error('export read ended early')));
  }
}

/** `streamBatches` a row at a time. */
export async function* streamRows<T>(ds: DataSource, query: SqlQuery, signal: AbortSignal, batchSize: number): AsyncGenerator<T> {
  for await (const rows of streamBatches<T>(ds, query, signal, batchSize)) {
    for (const row of rows) {
      signal.throwIfAborted();
      yield row;
    }
  }
}

/** Strings joined into buffers of about CHUNK_BYTES. */
async function* inChunks(parts: AsyncIterable<string>): AsyncGenerator<Buffer> {
  let pending: string[] = [];
  let size = 0;
  for await (const part of parts) {
    pending.push(part);
    size += part.length;
    if (size >= CHUNK_BYTES) {
      yield Buffer.from(pending.join(''), 'utf8');
      pending = [];
      size = 0;
    }
  }
  if (pending.length) yield Buffer.from(pending.join(''), 'utf8');
}

/** What MISSING.txt is written through: a tar-stream entry (a streamx Writable, whose typings want an argument to `end`). */
interface LineSink {
  write(line: string): boolean;
  end(): unknown;
  once(event: 'drain', listener: () => void): unknown;
}

interface ImageRow {
  id: string;
  contentHash: string;
  mimeType: string | null;
}

/**
 * Dataset exports (LLaVA JSON, JSONL, TRL preference pairs, image archive), streamed with memory
 * that does not grow with the dataset: rows come through a cursor and leave as they are formatted.
 */
export class DatasetExportsService {
  constructor(
    private readonly ds: DataSource,
    private readonly datasets: DatasetsService,
    private readonly images: ImagesService,
  ) {}

  /** Any role of the dataset's project may export it; another project's id answers NOT_FOUND. */
  async open(ctx: RequestContext, datasetId: string, format: ExportFormat): Promise<DatasetExport> {
    const dataset = isUuid(datasetId) ? await this.datasets.findById(ctx, datasetId) : null;
    if (!dataset) throw notFound('Dataset');
    return this.opened(dataset, format);
  }

  /**
   * For a request that holds a signed link to this dataset and format (checked by the route): the
   * signature stands for the project's key, so the dataset is looked up by its id alone.
   */
  async openSigned(datasetId: string, format: ExportFormat): Promise<DatasetExport> {
    const dataset = isUuid(datasetId) ? await this.ds.getRepository(Dataset).findOneBy({ id: datasetId }) : null;
    if (!dataset) throw notFound('Dataset');
    return this.opened(dataset, format);
  }

  private opened(dataset: Dataset, format: ExportFormat): DatasetExport {
    return {
      dataset,
      fileName: exportFileName(dataset.name, dataset.version, format),
      contentType: EXPORT_CONTENT_TYPES[format],
      body: (signal) => this.body(dataset, format, signal),
    };
  }

  private body(dataset: Dataset, format: ExportFormat, signal: AbortSignal): AsyncGenerator<Buffer> {
    switch (format) {
      case 'llava.json':
        return this.llavaJson(dataset, signal);
      case 'jsonl':
        return this.jsonLines(dataset, signal);
      case 'trl.jsonl':
        return this.trlJsonLines(dataset, signal);
      case 'trl-vision.jsonl':
        return inChunks(this.trlLines(dataset, signal, (pair) => JSON.stringify(toTrlVisionRecord(pair))));
      case 'images.tar':
        return this.imageArchive(dataset, signal);
      case 'card.md':
        return this.card(dataset, renderCardMarkdown);
      case 'card.json':
        return this.card(dataset, renderCardJson);
    }
  }

  private async *card(dataset: Dataset, render: (card: Awaited<ReturnType<typeof buildDatasetCard>>) => string): AsyncGenerator<Buffer> {
    yield Buffer.from(render(await buildDatasetCard(this.ds, dataset)), 'utf8');
  }

  /**
   * One JSON array, one sample per line. Postgres writes each sample (dataset-export.lines.ts); a
   * batch of rows leaves as one buffer, each line encoded into place (export-bytes.ts).
   */
  private async *llavaJson(dataset: Dataset, signal: AbortSignal): AsyncGenerator<Buffer> {
    const out = new ExportBytes();
    let separator = '\n';
    out.string('[');
    for await (const rows of streamBatches<[string]>(this.ds, itemLinesQuery(dataset.id, dataset.projectId, 'llava.json'), signal, TEXT_BATCH_ROWS, 'array')) {
      for (const [line] of rows) {
        out.string(separator).string(line);
        separator = ',\n';
      }
      yield out.take();
    }
    out.string(separator === '\n' ? ']\n' : '\n]\n');
    yield out.take();
  }

  /** One record per line, written by Postgres but for the score, a float formatted as JavaScript does (see dataset-export.lines.ts). */
  private async *jsonLines(dataset: Dataset, signal: AbortSignal): AsyncGenerator<Buffer> {
    const out = new ExportBytes();
    for await (const rows of streamBatches<[string, number | null, string]>(this.ds, itemLinesQuery(dataset.id, dataset.projectId, 'jsonl'), signal, TEXT_BATCH_ROWS, 'array')) {
      for (const [head, score, tail] of rows) out.string(head).string(JSON.stringify(score)).string(tail);
      yield out.take();
    }
  }

  /** `trl.jsonl`: a batch of items' lines per buffer, each item's messages encoded once (`writeTrlLines`). */
  private async *trlJsonLines(dataset: Dataset, signal: AbortSignal): AsyncGenerator<Buffer> {
    const out = new ExportBytes();
    for await (const rows of streamBatches<TrlSourceRow>(this.ds, trlQuery(dataset.id, dataset.projectId), signal, TEXT_BATCH_ROWS)) {
      for (const row of rows) writeTrlLines(row, out);
      if (out.byteLength) yield out.take();
    }
  }

  private async *trlLines(dataset: Dataset, signal: AbortSignal, line: (pair: TrlPair) => string): AsyncGenerator<string> {
    for await (const row of streamRows<TrlSourceRow>(this.ds, trlQuery(dataset.id, dataset.projectId), signal, TEXT_BATCH_ROWS)) {
      for (const pair of buildPreferencePairs(row)) yield line(pair) + '\n';
    }
  }

  /**
   * A tar of `images/<sha256>.<ext>` (by image id), bytes read from storage one image at a time as
   * the client reads, then `MISSING.txt` when some images have no bytes. The pack stream buffers
   * about one image: its writer waits until the client has taken the previous one.
   */
  private async *imageArchive(dataset: Dataset, signal: AbortSignal): AsyncGenerator<Buffer> {
    const pack = tar.pack();
    const stop = new AbortController();
    const writer = this.packImages(dataset, pack, AbortSignal.any([signal, stop.signal])).then(
      () => pack.finalize(),
      (error: Error) => pack.destroy(error),
    );
    try {
      for await (const chunk of pack) yield chunk as Buffer;
    } finally {
      stop.abort();
      pack.destroy();
      await writer;
    }
  }

  /**
   * Images are listed a page at a time on a pooled connection that goes back before their bytes
   * are read (storage reads take a connection of their own: holding a cursor meanwhile could take
   * every connection of the pool under concurrent downloads and wait forever).
   */
  private async *imagesWithFile(dataset: Dataset, signal: AbortSignal): AsyncGenerator<ImageRow> {
    for (let after = FIRST_UUID; ; ) {
      const query = imagesWithFilePage(dataset.id, dataset.projectId, after, IMAGE_PAGE);
      const rows: ImageRow[] = await this.ds.query(query.text, query.values);
      for (const row of rows) {
        signal.throwIfAborted();
        yield row;
      }
      if (rows.length < IMAGE_PAGE) return;
      after = rows[rows.length - 1].id;
    }
  }

  private async packImages(dataset: Dataset, pack: tar.Pack, signal: AbortSignal): Promise<void> {
    const mtime = dataset.createdAt;
    // The card first: whoever unpacks the images finds what they are and where they came from.
    const card = await buildDatasetCard(this.ds, dataset);
    for (const [name, text] of [[CARD_MARKDOWN_FILE, renderCardMarkdown(card)], [CARD_JSON_FILE, renderCardJson(card)]]) {
      const bytes = Buffer.from(text, 'utf8');
      await new Promise<void>((resolve, reject) => pack.entry({ name, size: bytes.length, mtime }, bytes, (error) => (error ? reject(error) : resolve())));
    }
    // Hash known, bytes gone: an anomaly (uploads store bytes first), so these few ids are kept in memory.
    const notInStorage: string[] = [];
    for await (const image of this.imagesWithFile(dataset, signal)) {
      const file = await this.images.readFile(Object.assign(new Image(), { projectId: dataset.projectId, contentHash: image.contentHash }), 'original');
      if (!file) {
        notInStorage.push(image.id);
        continue;
      }
      await new Promise<void>((resolve, reject) =>
        pack.entry({ name: imagePath(image.contentHash, image.mimeType)!, size: file.bytes.length, mtime }, file.bytes, (error) => (error ? reject(error) : resolve())),
      );
    }

    // MISSING.txt: a tar entry states its size first, so the count and the ids come from one statement.
    let missing: { sink: LineSink; done: Promise<void> } | null = null;
    const open = (withoutFile: number) => {
      const size = missingFileSize({ [MissingReason.NO_FILE]: withoutFile, [MissingReason.NOT_IN_STORAGE]: notInStorage.length });
      let sink!: LineSink;
      const done = new Promise<void>((resolve, reject) => {
        sink = pack.entry({ name: MISSING_FILE, size, mtime }, (error) => (error ? reject(error) : resolve())) as unknown as LineSink;
      });
      done.catch(() => {}); // awaited below; a destroyed archive must not reject unobserved meanwhile
      return { sink, done };
    };
    // Waits for the archive to take more; `done` rejects when the archive is destroyed meanwhile.
    const write = async ({ sink, done }: { sink: LineSink; done: Promise<void> }, line: string) => {
      if (!sink.write(line)) await Promise.race([new Promise<void>((resolve) => sink.once('drain', () => resolve())), done]);
    };
    const openWithStored = async (withoutFile: number) => {
      const opened = open(withoutFile);
      for (const id of notInStorage) await write(opened, missingLine(id, MissingReason.NOT_IN_STORAGE));
      return opened;
    };
    const query = imagesWithoutFileQuery(dataset.id, dataset.projectId);
    for await (const row of streamRows<{ id: string; total: number }>(this.ds, query, signal, TEXT_BATCH_ROWS)) {
      missing ??= await openWithStored(row.total);
      await write(missing, missingLine(row.id, MissingReason.NO_FILE));
    }
    if (!missing && notInStorage.length) missing = await openWithStored(0);
    if (missing) {
      missing.sink.end();
      await missing.done;
    }
  }
}
