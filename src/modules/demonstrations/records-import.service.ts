import path from 'node:path';
import { DataSource } from 'typeorm';
import { RequestContext } from '../projects/request-context';
import { badInput } from '../../platform/errors';
import { findNulByte } from '../../platform/input-checks';
import { userError, UserErrorCode, UserErrorsException } from '../../platform/user-errors';
import type { UploadedFile } from '../../platform/uploads';
import { ImagesService } from '../images/images.service';
import { InspectedImage } from '../images/image-bytes';
import { ImageSource } from '../images/modality';
import { isHttpUrl, SafeFetchError } from '../../platform/safe-fetch';
import { RunsService } from '../runs/runs.service';
import { Run, RunKind } from '../runs/run.entity';
import { Semaphore } from '../../platform/semaphore';
import { DemonstrationsService } from './demonstrations.service';
import { FigureRecord, figureRecordSchema, recordFileName, toImageRecord, toTurns } from './record-schema';

export const MAX_RECORDS_PER_IMPORT = 10000;

export interface RecordError {
  /** Position of the record in the submitted array. */
  index: number;
  recordId: string | null;
  field: string | null;
  message: string;
  /** Set for image failures (UNSUPPORTED_MEDIA, TOO_LARGE, INVALID: fetch refused, timed out, HTTP error). */
  code?: UserErrorCode | null;
}

export interface ImportResult {
  recordErrors: RecordError[];
  imagesCreated: number;
  imagesUpdated: number;
  imagesWithBytes: number;
  demonstrationsCreated: number;
  unmatchedFiles: string[];
  /** The IMAGE_FETCH run that fetches the images given by URL; null when the import named none. */
  fetchRun: Run | null;
}

interface Checked {
  index: number;
  record: FigureRecord;
  file?: { bytes: Buffer; inspected: InspectedImage };
  /** The record's image is an http(s) URL: the image is written without bytes, and a run fetches them. */
  url?: string;
}

const emptyResult = (recordErrors: RecordError[]): ImportResult => ({
  recordErrors,
  imagesCreated: 0,
  imagesUpdated: 0,
  imagesWithBytes: 0,
  demonstrationsCreated: 0,
  unmatchedFiles: [],
  fetchRun: null,
});

/**
 * Imports figure/caption records and clinician demonstrations (LLaVA-Med / BioMed-VITAL JSON), with
 * image files matched by file name, or fetched when a record's `imgs` (or `image`) is an http(s) URL.
 * Everything is checked first; one bad record means nothing is written and every problem is
 * reported, so a curator fixes the file in one pass.
 *
 * A URL is checked here for what can be known without fetching it (syntax, scheme, credentials, a
 * literal private address when those are refused):
 * a bad one is a record error like any other. The image is written without bytes, keeping its URL,
 * and in the same transaction an IMAGE_FETCH run (image-fetch.run.ts) is created to fetch them: a
 * worker does the network work, under the same limits as uploads, and each image it cannot fetch
 * is a run failure keyed `image:<id>` (the image keeps the record's pair id), not a failed import.
 */
export class RecordsImportService {
  constructor(
    private readonly ds: DataSource,
    private readonly images: ImagesService,
    private readonly demonstrations: DemonstrationsService,
    private readonly runs: RunsService,
    private readonly fetchConcurrency = 8,
  ) {}

  async import(ctx: RequestContext, records: unknown, files: UploadedFile[], options: { createDemonstrations: boolean }): Promise<ImportResult> {
    if (!Array.isArray(records)) throw badInput('records must be a JSON array of figure records', 'records');
    if (records.length === 0) throw badInput('records is empty', 'records');
    if (records.length > MAX_RECORDS_PER_IMPORT) throw badInput(`At most ${MAX_RECORDS_PER_IMPORT} records per import`, 'records');

    const errors: RecordError[] = [];
    const parsed = this.parseRecords(records, errors);
    const filesByName = this.indexFiles(files);
    const checked = await this.attachFiles(parsed, filesByName, errors);
    await this.checkHashConflicts(ctx, checked, errors);
    if (errors.length) return emptyResult(errors.sort((a, b) => a.index - b.index));

    const matchedNames = new Set(checked.map((c) => recordFileName(c.record)).filter(Boolean));
    return this.ds.transaction(async (em) => {
      const { idByPair: imageIdByPair, created } = await this.images.upsertRecords(
        em,
        ctx,
        checked.map((c) => ({ record: { ...toImageRecord(c.record), ...(c.url ? { sourceUrl: c.url } : {}) }, file: c.file, source: c.url ? ImageSource.URL : ImageSource.IMPORT })),
      );
      const fetchIds = checked.filter((c) => c.url).map((c) => imageIdByPair.get(c.record.pair_id)!);
      // A re-imported record whose image already has its bytes needs no fetch: no empty run.
      const fetchRun = (await this.images.anyAwaitingFetch(em, ctx, fetchIds))
        ? await this.runs.create(ctx, { kind: RunKind.IMAGE_FETCH, params: { concurrency: this.fetchConcurrency }, targets: this.images.awaitingFetch(ctx, fetchIds) }, em)
        : null;
      const demonstrationsCreated = options.createDemonstrations
        ? await this.demonstrations.insertMany(
            em,
            ctx,
            checked
              .filter((c) => c.record.conversations?.length)
              .map((c) => ({ imageId: imageIdByPair.get(c.record.pair_id)!, turns: toTurns(c.record), externalId: c.record.id == null ? null : String(c.record.id) })),
          )
        : 0;
      return {
        recordErrors: [],
        imagesCreated: created,
        imagesUpdated: checked.length - created,
        imagesWithBytes: checked.filter((c) => c.file).length,
        demonstrationsCreated,
        unmatchedFiles: [...filesByName.keys()].filter((n) => !matchedNames.has(n)).sort(),
        fetchRun,
      };
    });
  }

  private parseRecords(records: unknown[], errors: RecordError[]): { index: number; record: FigureRecord }[] {
    const seenPairs = new Map<string, number>();
    const parsed: { index: number; record: FigureRecord }[] = [];
    records.forEach((raw, index) => {
      const recordId = typeof raw === 'object' && raw && 'id' in raw ? String((raw as { id: unknown }).id) : null;
      // A records file bypasses the edge's check of GraphQL inputs; Postgres text cannot hold U+0000.
      const nul = findNulByte(raw);
      if (nul) {
        errors.push({ index, recordId, field: nul.join('.') || null, message: 'contains a NUL byte (U+0000), which text fields cannot store' });
        return;
      }
      const result = figureRecordSchema.safeParse(raw);
      if (!result.success) {
        for (const issue of result.error.issues) {
          // An unknown field is reported at the field itself, not at the record that holds it.
          const paths = issue.code === 'unrecognized_keys' ? issue.keys.map((key) => [...issue.path, key]) : [issue.path];
          for (const p of paths) errors.push({ index, recordId, field: p.join('.') || null, message: issue.message });
        }
        return;
      }
      const earlier = seenPairs.get(result.data.pair_id);
      if (earlier !== undefined) {
        errors.push({ index, recordId, field: 'pair_id', message: `pair_id ${result.data.pair_id} repeats record ${earlier}` });
        return;
      }
      seenPairs.set(result.data.pair_id, index);
      parsed.push({ index, record: result.data });
    });
    return parsed;
  }

  private indexFiles(files: UploadedFile[]): Map<string, Buffer> {
    const byName = new Map<string, Buffer>();
    for (const file of files) {
      const name = path.basename(file.fileName);
      if (byName.has(name)) throw new UserErrorsException([userError(UserErrorCode.INVALID, `Two files are named ${name}`, ['input', 'images'])]);
      byName.set(name, file.bytes);
    }
    return byName;
  }

  private async attachFiles(parsed: { index: number; record: FigureRecord }[], files: Map<string, Buffer>, errors: RecordError[]): Promise<Checked[]> {
    // One bound for decodes: a 10,000-record import never decodes 10,000 images at once.
    const fetches = new Semaphore(this.fetchConcurrency);
    const attached = await Promise.all(
      parsed.map(async ({ index, record }): Promise<Checked | null> => {
        const name = recordFileName(record);
        const field = record.imgs != null ? 'imgs' : 'image';
        if (name && isHttpUrl(name)) return this.checkUrl(index, record, name, field, errors);
        try {
          const bytes = name ? files.get(path.basename(name)) : undefined;
          if (!bytes) return { index, record };
          return { index, record, file: { bytes, inspected: await fetches.use(() => this.images.inspect(bytes, ['images', name!])) } };
        } catch (error) {
          if (!(error instanceof UserErrorsException)) throw error;
          const code = error.errors[0]?.code ?? null;
          errors.push({ index, recordId: record.id == null ? null : String(record.id), field, message: `${name}: ${error.message}`, code });
          return null;
        }
      }),
    );
    return attached.filter((c): c is Checked => c !== null);
  }

  /** A record whose image is a URL: checked without fetching (syntax, scheme, credentials, literal private address); a worker fetches it later. */
  private checkUrl(index: number, record: FigureRecord, url: string, field: string, errors: RecordError[]): Checked | null {
    try {
      this.images.checkUrl(url);
      return { index, record, url };
    } catch (error) {
      if (!(error instanceof SafeFetchError)) throw error;
      errors.push({ index, recordId: record.id == null ? null : String(record.id), field, message: `${url}: ${error.message}`, code: UserErrorCode.INVALID });
      return null;
    }
  }

  /**
   * The same bytes may back only one image per project, and an image's bytes never change once
   * stored: a record that would break either is an error, not a silent skip.
   */
  private async checkHashConflicts(ctx: RequestContext, checked: Checked[], errors: RecordError[]): Promise<void> {
    const withFiles = checked.filter((c) => c.file);
    const stored = await this.images.findByPairIdsOrHashes(
      ctx,
      withFiles.map((c) => c.record.pair_id),
      withFiles.map((c) => c.file!.inspected.contentHash),
    );
    const pairOfHash = new Map(stored.filter((i) => i.contentHash).map((i) => [i.contentHash!, i.pairId]));
    const hashOfPair = new Map(stored.map((i) => [i.pairId, i.contentHash]));
    const firstByHash = new Map<string, Checked>();
    for (const c of withFiles) {
      const hash = c.file!.inspected.contentHash;
      const fail = (message: string) => errors.push({ index: c.index, recordId: c.record.id == null ? null : String(c.record.id), field: 'imgs', message });
      const earlier = firstByHash.get(hash);
      if (earlier) {
        fail(`same image bytes as record ${earlier.index}`);
        continue;
      }
      firstByHash.set(hash, c);
      if (pairOfHash.has(hash) && pairOfHash.get(hash) !== c.record.pair_id) fail(`these bytes are already stored for another image (${pairOfHash.get(hash) ?? 'no pair id'})`);
      const storedHash = hashOfPair.get(c.record.pair_id);
      if (storedHash && storedHash !== hash) fail(`image ${c.record.pair_id} already has other bytes; stored images do not change`);
    }
  }
}
