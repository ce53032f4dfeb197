import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { DataSource, In, SelectQueryBuilder } from 'typeorm';
import { lockNextVersion } from '../../platform/versioning';
import { applyKeyset, ConnectionShape, PageArgs, SortDirection, toConnection } from '../../platform/pagination';
import { BlobStorage } from '../../platform/storage';
import { OnnxRuntime, ThreadedSessionCache } from '../../platform/onnx';
import { loadTokenizer } from '../../platform/tokenizer';
import { checkedSession, checkedTokenizer, checkModelFiles, fileError, firstLine } from '../../platform/model-files';
import { userError, UserErrorCode, UserErrorsException } from '../../platform/user-errors';
import { RequestContext } from '../projects/request-context';
import { CandidatesService } from '../candidates/candidates.service';
import { ImagesService } from '../images/images.service';
import { imagePixels, selectorText, SelectorTextSource } from '../selectors/selector-inputs';
import { EncoderModel, StoredEncoderFile } from './encoder-model.entity';
import { EmbeddingKind, EncoderEmbedding } from './encoder-embedding.entity';
import { ENCODER_FILE_NAMES, EncoderFileName, EncoderManifest, encoderManifestSchema, selectorManifestOf } from './encoder-manifest';
import { EncoderRow, EncoderRunner, encoderContractProblems } from './encoder-runner';

export type EncoderFiles = Record<EncoderFileName, Buffer | null>;

export interface NewEncoderModel {
  name: string;
  description?: string | null;
  files: EncoderFiles;
}

export interface EncodersOptions {
  maxBytes: number;
  importDirs: string[];
  /** Rows per encoder batch when computing embeddings. */
  batchSize?: number;
}

/** What `ensureEmbeddings` did: rows it computed (0 when all were stored), and images it could not embed, with why. */
export interface EnsuredEmbeddings {
  computedImages: number;
  computedTexts: number;
  unembeddable: Map<string, string>;
}

const sha256 = (bytes: Buffer | string) => crypto.createHash('sha256').update(bytes).digest('hex');

/** The key a text's embedding is stored under: SHA-256 of its UTF-8 bytes. */
export const textKey = (text: string) => sha256(text);

const toBytes = (values: Float32Array) => Buffer.from(values.buffer, values.byteOffset, values.byteLength);
const toFloats = (bytes: Buffer) => {
  const copy = new Float32Array(bytes.length / 4);
  new Uint8Array(copy.buffer).set(bytes);
  return copy;
};

/**
 * The registry of encoders (issue 11) and their stored embeddings. Registration validates like a
 * selector's (loads, tensors fit the encoder contract, a dry run on a real sample gives finite
 * embeddings of the manifest's widths); embeddings are computed once per (encoder, image) and
 * (encoder, text), batched, and read from the table from then on.
 */
export class EncodersService {
  private readonly sessions: ThreadedSessionCache;
  private readonly runners = new Map<string, Promise<EncoderRunner>>();
  private readonly batchSize: number;

  constructor(
    private readonly ds: DataSource,
    private readonly storage: BlobStorage,
    private readonly runtime: OnnxRuntime,
    private readonly candidates: CandidatesService,
    private readonly images: ImagesService,
    private readonly options: EncodersOptions,
  ) {
    this.sessions = new ThreadedSessionCache(runtime);
    this.batchSize = options.batchSize ?? 32;
  }

  async list(ctx: RequestContext, page: PageArgs): Promise<ConnectionShape<EncoderModel>> {
    const base = () => this.ds.getRepository(EncoderModel).createQueryBuilder('m').where('m.projectId = :p', { p: ctx.projectId });
    const rows = await applyKeyset(base(), { sortExpr: 'm.createdAt', idExpr: 'm.id', direction: SortDirection.DESC }, page).getMany();
    return toConnection(rows, page, (m) => ({ value: m.createdAt, id: m.id }), () => base().getCount());
  }

  async findById(ctx: RequestContext, id: string): Promise<EncoderModel | null> {
    return this.ds.getRepository(EncoderModel).findOneBy({ id, projectId: ctx.projectId });
  }

  async findByIds(ctx: RequestContext, ids: readonly string[]): Promise<EncoderModel[]> {
    if (ids.length === 0) return [];
    return this.ds.getRepository(EncoderModel).findBy({ id: In([...ids]), projectId: ctx.projectId });
  }

  /** The encoder as a run's frozen target (a training run works over one encoder). */
  targetQuery(ctx: RequestContext, id: string): SelectQueryBuilder<object> {
    return this.ds.getRepository(EncoderModel).createQueryBuilder('e').select('e.id', 'id').where('e.id = :id AND e.projectId = :p', { id, p: ctx.projectId }) as unknown as SelectQueryBuilder<object>;
  }

  /** The project's most recently registered encoder, if any. */
  async findLatest(ctx: RequestContext): Promise<EncoderModel | null> {
    return this.ds.getRepository(EncoderModel).findOne({ where: { projectId: ctx.projectId }, order: { createdAt: 'DESC', id: 'DESC' } });
  }

  /** Reads the three files from a server folder under one of SELECTOR_IMPORT_DIRS (after resolving links). */
  async readServerFolder(folder: string): Promise<EncoderFiles> {
    const invalid = (message: string) => new UserErrorsException([userError(UserErrorCode.INVALID, message, ['input', 'serverPath'])]);
    if (this.options.importDirs.length === 0) throw invalid('Registering from a server path is not enabled (SELECTOR_IMPORT_DIRS is empty)');
    const real = await fs.realpath(folder).catch(() => null);
    const allowed = await Promise.all(this.options.importDirs.map((d) => fs.realpath(d).catch(() => null)));
    const inside = real && allowed.some((dir) => dir && (real === dir || real.startsWith(dir + path.sep)));
    if (!inside) throw invalid('The folder does not exist or is not under an allowed import folder');
    const read = async (name: EncoderFileName): Promise<Buffer | null> => {
      const file = path.join(real, ENCODER_FILE_NAMES[name]);
      const stat = await fs.stat(file).catch(() => null);
      if (!stat?.isFile()) return null;
      if (stat.size > this.options.maxBytes) throw new UserErrorsException([userError(UserErrorCode.TOO_LARGE, `${ENCODER_FILE_NAMES[name]} is over ${this.options.maxBytes} bytes`, ['input', 'serverPath'])]);
      return fs.readFile(file);
    };
    return { model: await read('model'), tokenizer: await read('tokenizer'), manifest: await read('manifest') };
  }

  /** Validates and records an encoder; the same files under the same name return the existing version. */
  async register(ctx: RequestContext, spec: NewEncoderModel): Promise<EncoderModel> {
    const name = spec.name.trim();
    if (!/^[\w.-]{1,100}$/.test(name)) throw new UserErrorsException([userError(UserErrorCode.INVALID, 'Use 1-100 letters, digits, dots, dashes or underscores', ['input', 'name'])]);
    const validated = await this.validate(ctx, spec.files);
    const files = await this.storeFiles(ctx, validated.bytes);
    const filesHash = sha256(Buffer.from(`${files.model.sha256}\n${files.tokenizer.sha256}\n${files.manifest.sha256}`));
    return this.ds.transaction(async (em) => {
      const next = await lockNextVersion(em, EncoderModel, ctx.projectId, name);
      const repo = em.getRepository(EncoderModel);
      const existing = await repo.findOneBy({ projectId: ctx.projectId, name, filesHash });
      if (existing) return existing;
      return repo.save(
        repo.create({
          projectId: ctx.projectId,
          name,
          version: next,
          description: spec.description?.trim() || null,
          filesHash,
          manifest: validated.manifest as unknown as Record<string, unknown>,
          imageDim: validated.manifest.embeddings.imageDim,
          textDim: validated.manifest.embeddings.textDim,
          files,
          signature: validated.signature,
          createdById: ctx.userId,
        }),
      );
    });
  }

  manifestOf(model: EncoderModel): EncoderManifest {
    return encoderManifestSchema.parse(model.manifest);
  }

  /** A stored file's bytes (the export joins a trained head to model.onnx and reuses tokenizer.json). */
  async fileBytes(model: EncoderModel, name: EncoderFileName): Promise<Buffer> {
    const blob = await this.storage.get(model.files[name].key);
    if (!blob) throw new Error(`The stored ${ENCODER_FILE_NAMES[name]} of encoder ${model.name} v${model.version} is missing`);
    return blob.bytes;
  }

  /** For workers: a runner for an encoder version, loaded once per process. */
  runnerFor(model: EncoderModel): Promise<EncoderRunner> {
    let runner = this.runners.get(model.id);
    if (!runner) {
      runner = (async () => {
        const [session, tokenizer] = await Promise.all([this.sessions.get(`encoder:${model.id}`, () => this.fileBytes(model, 'model')), this.fileBytes(model, 'tokenizer')]);
        return new EncoderRunner(session, loadTokenizer(tokenizer.toString('utf8')), this.manifestOf(model));
      })();
      runner.catch(() => this.runners.delete(model.id));
      this.runners.set(model.id, runner);
    }
    return runner;
  }

  async close(): Promise<void> {
    this.runners.clear();
    await this.sessions.close();
  }

  /**
   * Makes sure every image (by id) and text has its stored embedding under `encoder`, computing the
   * missing ones in batches: row i of a batch carries the i-th missing image and the i-th missing
   * text (a neutral grey image or an empty text fills the shorter list), so a batch embeds both
   * kinds at once. Rows are written with ON CONFLICT DO NOTHING: two runs racing store one row.
   * Images without bytes, or that do not decode, are returned in `unembeddable`.
   */
  async ensureEmbeddings(ctx: RequestContext, encoder: EncoderModel, wanted: { imageIds: readonly string[]; texts: readonly string[] }, signal?: AbortSignal): Promise<EnsuredEmbeddings> {
    const imageIds = [...new Set(wanted.imageIds)].sort();
    const textsByKey = new Map<string, string>();
    for (const text of wanted.texts) textsByKey.set(textKey(text), text);
    const [storedImages, storedTexts] = await Promise.all([this.storedKeys(ctx, encoder.id, 'image', imageIds), this.storedKeys(ctx, encoder.id, 'text', [...textsByKey.keys()])]);
    const missingImages = imageIds.filter((id) => !storedImages.has(id));
    const missingTexts = [...textsByKey.keys()].filter((key) => !storedTexts.has(key)).sort();
    const unembeddable = new Map<string, string>();
    const result: EnsuredEmbeddings = { computedImages: 0, computedTexts: 0, unembeddable };
    if (missingImages.length === 0 && missingTexts.length === 0) return result;

    const runner = await this.runnerFor(encoder);
    const manifest = selectorManifestOf(runner.manifest);
    // Pixels of the missing images, batch by batch (decoded images are large; never all at once).
    const figures = new Map((await this.images.figuresByIds(ctx, missingImages)).map((f) => [f.id, f]));
    const imagesToEmbed: string[] = [];
    for (const id of missingImages) {
      if (!figures.get(id)?.contentHash) unembeddable.set(id, 'The image has no stored bytes');
      else imagesToEmbed.push(id);
    }
    const filler = await imagePixels(await sharp({ create: { width: 8, height: 8, channels: 3, background: '#808080' } }).png().toBuffer(), manifest);
    const rowsTotal = Math.max(imagesToEmbed.length, missingTexts.length);
    for (let start = 0; start < rowsTotal; start += this.batchSize) {
      signal?.throwIfAborted();
      const end = Math.min(start + this.batchSize, rowsTotal);
      const batchImages = imagesToEmbed.slice(start, end);
      const batchTexts = missingTexts.slice(start, end);
      const bytes = await this.images.originalsByHash(ctx.projectId, [...new Set(batchImages.map((id) => figures.get(id)!.contentHash!))]);
      const pixels: (Float32Array | null)[] = await Promise.all(
        batchImages.map(async (id) => {
          const original = bytes.get(figures.get(id)!.contentHash!);
          if (!original) {
            unembeddable.set(id, 'The image has no stored bytes');
            return null;
          }
          try {
            return await imagePixels(original, manifest);
          } catch (error) {
            unembeddable.set(id, `The image could not be preprocessed: ${firstLine(error)}`);
            return null;
          }
        }),
      );
      const rows: EncoderRow[] = [];
      for (let i = 0; i < end - start; i++) rows.push({ pixels: pixels[i] ?? filler, text: i < batchTexts.length ? textsByKey.get(batchTexts[i])! : '' });
      const embedded = await runner.embed(rows);
      const { imageDim, textDim } = runner.manifest.embeddings;
      const kinds: string[] = [];
      const keys: string[] = [];
      const vectors: Buffer[] = [];
      batchImages.forEach((id, i) => {
        if (!pixels[i]) return;
        kinds.push('image');
        keys.push(id);
        vectors.push(toBytes(checkFinite(embedded.image.slice(i * imageDim, (i + 1) * imageDim), 'image_embeds')));
      });
      batchTexts.forEach((key, i) => {
        kinds.push('text');
        keys.push(key);
        vectors.push(toBytes(checkFinite(embedded.text.slice(i * textDim, (i + 1) * textDim), 'text_embeds')));
      });
      await this.ds.query(
        `INSERT INTO encoder_embeddings (encoder_id, kind, key, project_id, vector)
         SELECT $1, e.kind, e.key, $2, e.vector FROM unnest($3::text[], $4::text[], $5::bytea[]) AS e(kind, key, vector)
         ON CONFLICT (encoder_id, kind, key) DO NOTHING`,
        [encoder.id, ctx.projectId, kinds, keys, vectors],
      );
      result.computedImages += batchImages.filter((_, i) => pixels[i]).length;
      result.computedTexts += batchTexts.length;
    }
    return result;
  }

  /** Stored embeddings by key (image ids, or `textKey`s); keys without one are absent from the map. */
  async embeddings(ctx: RequestContext, encoderId: string, kind: EmbeddingKind, keys: readonly string[]): Promise<Map<string, Float32Array>> {
    if (keys.length === 0) return new Map();
    const rows: { key: string; vector: Buffer }[] = await this.ds.query(`SELECT key, vector FROM encoder_embeddings WHERE encoder_id = $1 AND project_id = $2 AND kind = $3 AND key = ANY($4::text[])`, [
      encoderId,
      ctx.projectId,
      kind,
      [...new Set(keys)],
    ]);
    return new Map(rows.map((r) => [r.key, toFloats(r.vector)]));
  }

  /** How many embeddings are stored for the encoder, by kind. */
  async embeddingCounts(ctx: RequestContext, encoderId: string): Promise<{ image: number; text: number }> {
    const rows: { kind: EmbeddingKind; n: number }[] = await this.ds.query(`SELECT kind, count(*)::int AS n FROM encoder_embeddings WHERE encoder_id = $1 AND project_id = $2 GROUP BY kind`, [encoderId, ctx.projectId]);
    const counts = { image: 0, text: 0 };
    for (const r of rows) counts[r.kind] = r.n;
    return counts;
  }

  /** The text an encoder embeds for a text source (its manifest's template). */
  textFor(model: EncoderModel, source: SelectorTextSource): string {
    return selectorText(source, selectorManifestOf(this.manifestOf(model)));
  }

  private async storedKeys(ctx: RequestContext, encoderId: string, kind: EmbeddingKind, keys: readonly string[]): Promise<Set<string>> {
    if (keys.length === 0) return new Set();
    const rows: { key: string }[] = await this.ds.query(`SELECT key FROM encoder_embeddings WHERE encoder_id = $1 AND project_id = $2 AND kind = $3 AND key = ANY($4::text[])`, [encoderId, ctx.projectId, kind, [...keys]]);
    return new Set(rows.map((r) => r.key));
  }

  private async validate(ctx: RequestContext, files: EncoderFiles) {
    const bytes = checkModelFiles(files, ENCODER_FILE_NAMES, this.options.maxBytes);
    const manifest = parseManifest(bytes.manifest);
    if (typeof manifest === 'string') throw fileError('manifest', UserErrorCode.INVALID, `encoder.json is not a valid manifest: ${manifest}`);

    const tokenizer = checkedTokenizer(bytes.tokenizer, manifest.text.maxLength);
    const loaded = await checkedSession(this.runtime, bytes.model);
    try {
      const { inputs, outputs } = loaded;
      const problems = encoderContractProblems(inputs, outputs, manifest);
      if (problems.length) throw fileError('model', UserErrorCode.INVALID, `model.onnx does not fit the encoder contract: ${problems.join('; ')}`);
      const runner = new EncoderRunner(loaded, tokenizer, manifest);
      const sample = await this.dryRunSample(ctx, manifest);
      let embedded;
      try {
        embedded = await runner.embed([sample]);
      } catch (error) {
        throw fileError('model', UserErrorCode.INVALID, `The dry run failed: ${firstLine(error)}`);
      }
      for (const [name, values] of [['image_embeds', embedded.image], ['text_embeds', embedded.text]] as const) {
        if (!values.every(Number.isFinite)) throw fileError('model', UserErrorCode.INVALID, `The dry run gave ${name} that are not all finite numbers`);
      }
      return { bytes, manifest, signature: { inputs, outputs } };
    } finally {
      await loaded.release().catch(() => undefined);
    }
  }

  /** One real sample of the project (its latest OK candidate with image bytes), or a neutral synthetic one before any exists. */
  private async dryRunSample(ctx: RequestContext, encoderManifest: EncoderManifest): Promise<EncoderRow> {
    const manifest = selectorManifestOf(encoderManifest);
    const found = await this.candidates.latestOkWithImage(ctx);
    const file = found?.image?.contentHash ? await this.images.readFile(found.image, 'original') : null;
    if (found?.image && file) {
      const source: SelectorTextSource = { caption: found.image.caption, mentions: found.image.mentions, rounds: found.rounds };
      return { pixels: await imagePixels(file.bytes, manifest), text: selectorText(source, manifest) };
    }
    const grey = await sharp({ create: { width: manifest.image.size, height: manifest.image.size, channels: 3, background: '#808080' } }).png().toBuffer();
    return { pixels: await imagePixels(grey, manifest), text: 'A biomedical figure. What does the image show? It shows a figure.' };
  }

  private async storeFiles(ctx: RequestContext, bytes: Record<EncoderFileName, Buffer>): Promise<Record<EncoderFileName, StoredEncoderFile>> {
    const stored = {} as Record<EncoderFileName, StoredEncoderFile>;
    for (const name of ['model', 'tokenizer', 'manifest'] as const) {
      const hash = sha256(bytes[name]);
      const key = `encoders/${ctx.projectId}/${hash}`;
      await this.storage.put(key, bytes[name], name === 'model' ? 'application/octet-stream' : 'application/json');
      stored[name] = { key, sha256: hash, bytes: bytes[name].length };
    }
    return stored;
  }
}

function checkFinite(values: Float32Array, name: string): Float32Array {
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) throw new Error(`The encoder gave a non-finite value in ${name}`);
  return values;
}

function parseManifest(bytes: Buffer): EncoderManifest | string {
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch (error) {
    return `not JSON (${firstLine(error)})`;
  }
  const parsed = encoderManifestSchema.safeParse(json);
  if (!parsed.success) return parsed.error.issues.map((i) => `${i.path.join('.') || 'manifest'}: ${i.message}`).join('; ');
  return parsed.data;
}

export { EncoderEmbedding };
