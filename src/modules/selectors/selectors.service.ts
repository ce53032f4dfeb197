import crypto from 'node:crypto';
import { lockNextVersion } from '../../platform/versioning';
import { PlainRows } from '../../platform/plain-rows';
import fs from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { DataSource, EntityManager } from 'typeorm';
import { RequestContext } from '../projects/request-context';
import { applyKeyset, ConnectionShape, PageArgs, SortDirection, toConnection } from '../../platform/pagination';
import { BlobStorage } from '../../platform/storage';
import { OnnxRuntime, ThreadedSessionCache } from '../../platform/onnx';
import { loadTokenizer } from '../../platform/tokenizer';
import { checkedSession, checkedTokenizer, checkModelFiles, fileError, firstLine } from '../../platform/model-files';
import { userError, UserErrorCode, UserErrorsException } from '../../platform/user-errors';
import { DomainError, ErrorCode } from '../../platform/errors';
import { CandidatesService } from '../candidates/candidates.service';
import { ImagesService } from '../images/images.service';
import { SelectorFileName, SelectorModel, StoredSelectorFile, StoredSelectorHead } from './selector-model.entity';
import { SELECTOR_FILE_NAMES, SelectorManifest, selectorManifestSchema } from './selector-manifest';
import { contractProblems, SelectorRunner } from './selector-runner';
import { imagePixels, selectorText, SelectorTextSource } from './selector-inputs';

/** The three files of a selector, as uploaded or read from a server folder; null when not given. */
export type SelectorFiles = Record<SelectorFileName, Buffer | null>;


export interface NewSelectorModel {
  name: string;
  description?: string | null;
  files: SelectorFiles;
  activate?: boolean | null;
}

/** What a selector trained in the service carries besides its files (issue 11). */
export interface TrainedSelectorProvenance {
  encoderId: string;
  trainingRunId: string;
  /** clinicianWeight, pair counts, hyperparameters, seed, data hash: shown as `training`. */
  training: Record<string, unknown>;
  /** Held-out clinician metrics, shown as `metrics`. */
  metrics: Record<string, unknown> | null;
  /** The head's weights (float32 LE tensors in headParameterSpecs order) and its shape. */
  head: { bytes: Buffer; inputDim: number; hidden: number[] };
}

export interface SelectorsOptions {
  maxBytes: number;
  importDirs: string[];
}

const sha256 = (bytes: Buffer) => crypto.createHash('sha256').update(bytes).digest('hex');

/**
 * The registry of selector models: validates a selector against the contract (it loads, its
 * tensors fit, a dry run on a real sample gives a finite score), stores its files
 * content-addressed, and versions it by name. Workers get a cached runner per version.
 */
export class SelectorsService {
  private readonly sessions: ThreadedSessionCache;
  private readonly runners = new Map<string, Promise<SelectorRunner>>();

  constructor(
    private readonly ds: DataSource,
    private readonly storage: BlobStorage,
    private readonly runtime: OnnxRuntime,
    private readonly candidates: CandidatesService,
    private readonly images: ImagesService,
    private readonly options: SelectorsOptions,
  ) {
    this.sessions = new ThreadedSessionCache(runtime);
  }

  async list(ctx: RequestContext, page: PageArgs, activeOnly?: boolean | null): Promise<ConnectionShape<SelectorModel>> {
    const base = () => {
      const qb = this.ds.getRepository(SelectorModel).createQueryBuilder('m').where('m.projectId = :p', { p: ctx.projectId });
      return activeOnly ? qb.andWhere('m.active') : qb;
    };
    const rows = await applyKeyset(base(), { sortExpr: 'm.createdAt', idExpr: 'm.id', direction: SortDirection.DESC }, page).getMany();
    return toConnection(rows, page, (m) => ({ value: m.createdAt, id: m.id }), () => base().getCount());
  }

  async findById(ctx: RequestContext, id: string): Promise<SelectorModel | null> {
    return this.ds.getRepository(SelectorModel).findOneBy({ id, projectId: ctx.projectId });
  }

  /** A selector by name and version; the latest version of the name when none is given. */
  async findByName(ctx: RequestContext, name: string, version?: number | null): Promise<SelectorModel | null> {
    const repo = this.ds.getRepository(SelectorModel);
    if (version != null) return repo.findOneBy({ projectId: ctx.projectId, name: name.trim(), version });
    return repo.findOne({ where: { projectId: ctx.projectId, name: name.trim() }, order: { version: 'DESC' } });
  }

  async findActive(ctx: RequestContext): Promise<SelectorModel | null> {
    return this.ds.getRepository(SelectorModel).findOneBy({ projectId: ctx.projectId, active: true });
  }

  async findByIds(ctx: RequestContext, ids: readonly string[]): Promise<SelectorModel[]> {
    if (ids.length === 0) return [];
    const rows = PlainRows.of(this.ds, SelectorModel);
    return rows.query(`SELECT ${rows.select('m')} FROM selector_models m WHERE m.id = ANY($1::uuid[]) AND m.project_id = $2`, [[...ids], ctx.projectId], 'm');
  }

  /** A query for the ids of the project's selectors among `ids` (alias `m`), for freezing a run's targets (evaluation). */
  selectIds(ctx: RequestContext, ids: readonly string[]) {
    return this.ds.getRepository(SelectorModel).createQueryBuilder('m').select('m.id', 'id').where('m.projectId = :p AND m.id = ANY(:ids::uuid[])', { p: ctx.projectId, ids: [...ids] });
  }

  /** Reads the three files from a server folder under one of SELECTOR_IMPORT_DIRS (after resolving links). */
  async readServerFolder(folder: string): Promise<SelectorFiles> {
    const invalid = (message: string) => new UserErrorsException([userError(UserErrorCode.INVALID, message, ['input', 'serverPath'])]);
    if (this.options.importDirs.length === 0) throw invalid('Registering from a server path is not enabled (SELECTOR_IMPORT_DIRS is empty)');
    const real = await fs.realpath(folder).catch(() => null);
    const allowed = await Promise.all(this.options.importDirs.map((d) => fs.realpath(d).catch(() => null)));
    const inside = real && allowed.some((dir) => dir && (real === dir || real.startsWith(dir + path.sep)));
    if (!inside) throw invalid('The folder does not exist or is not under an allowed import folder');
    const read = async (name: SelectorFileName): Promise<Buffer | null> => {
      const file = path.join(real, SELECTOR_FILE_NAMES[name]);
      const stat = await fs.stat(file).catch(() => null);
      if (!stat?.isFile()) return null;
      if (stat.size > this.options.maxBytes) throw new UserErrorsException([userError(UserErrorCode.TOO_LARGE, `${SELECTOR_FILE_NAMES[name]} is over ${this.options.maxBytes} bytes`, ['input', 'serverPath'])]);
      return fs.readFile(file);
    };
    return { model: await read('model'), tokenizer: await read('tokenizer'), manifest: await read('manifest') };
  }

  /**
   * Validates and records a selector. The same files registered again under the same name return
   * the existing version; new files get the next version.
   */
  async register(ctx: RequestContext, spec: NewSelectorModel): Promise<SelectorModel> {
    const name = spec.name.trim();
    if (!/^[\w.-]{1,100}$/.test(name)) throw new UserErrorsException([userError(UserErrorCode.INVALID, 'Use 1-100 letters, digits, dots, dashes or underscores', ['input', 'name'])]);
    const validated = await this.validate(ctx, spec.files);
    const files = await this.storeFiles(ctx, validated.bytes);
    const filesHash = sha256(Buffer.from(`${files.model.sha256}\n${files.tokenizer.sha256}\n${files.manifest.sha256}`));

    return this.ds.transaction(async (em) => {
      const next = await lockNextVersion(em, SelectorModel, ctx.projectId, name);
      const repo = em.getRepository(SelectorModel);
      const existing = await repo.findOneBy({ projectId: ctx.projectId, name, filesHash });
      if (existing) return spec.activate ? this.activateIn(em, ctx, existing) : existing;
      const created = await repo.save(
        repo.create({
          projectId: ctx.projectId,
          name,
          version: next,
          description: spec.description?.trim() || null,
          filesHash,
          manifest: validated.manifest as unknown as Record<string, unknown>,
          files,
          signature: validated.signature,
          dryRunScore: validated.dryRunScore,
          createdById: ctx.userId,
          active: false,
        }),
      );
      return spec.activate ? this.activateIn(em, ctx, created) : created;
    });
  }

  /**
   * Registers a selector trained in the service: the joined model goes through the very validation
   * an upload does (register), never activated; then its provenance and head weights are recorded.
   * Idempotent: a resumed run registering the same files finds the same version and records the same.
   */
  async registerTrained(ctx: RequestContext, spec: Omit<NewSelectorModel, 'activate'>, provenance: TrainedSelectorProvenance): Promise<SelectorModel> {
    const model = await this.register(ctx, { ...spec, activate: false });
    const hash = sha256(provenance.head.bytes);
    const key = `selectors/${ctx.projectId}/${hash}`;
    await this.storage.put(key, provenance.head.bytes, 'application/octet-stream');
    const head: StoredSelectorHead = { key, sha256: hash, bytes: provenance.head.bytes.length, inputDim: provenance.head.inputDim, hidden: provenance.head.hidden };
    await this.ds.query(`UPDATE selector_models SET encoder_id = $2, training_run_id = $3, training = $4, head = $5, metrics = $6, updated_at = now() WHERE id = $1 AND project_id = $7`, [
      model.id,
      provenance.encoderId,
      provenance.trainingRunId,
      JSON.stringify(provenance.training),
      JSON.stringify(head),
      provenance.metrics === null ? null : JSON.stringify(provenance.metrics),
      ctx.projectId,
    ]);
    return Object.assign(model, { encoderId: provenance.encoderId, trainingRunId: provenance.trainingRunId, training: provenance.training, head, metrics: provenance.metrics });
  }

  /** The head weights of a selector trained in the service (head.bin), or null for an uploaded one. */
  async headBytes(model: SelectorModel): Promise<Buffer | null> {
    if (!model.head) return null;
    const blob = await this.storage.get(model.head.key);
    if (!blob) throw new Error(`The stored head of selector ${model.name} v${model.version} is missing`);
    return blob.bytes;
  }

  /** A page of the selectors a training run registered, oldest first (the sweep's order). */
  async listTrainedByRun(ctx: RequestContext, runId: string, page: PageArgs): Promise<ConnectionShape<SelectorModel>> {
    const base = () => this.ds.getRepository(SelectorModel).createQueryBuilder('m').where('m.projectId = :p AND m.trainingRunId = :r', { p: ctx.projectId, r: runId });
    const rows = await applyKeyset(base(), { sortExpr: 'm.createdAt', idExpr: 'm.id', direction: SortDirection.ASC }, page).getMany();
    return toConnection(rows, page, (m) => ({ value: m.createdAt, id: m.id }), () => base().getCount());
  }

  async activate(ctx: RequestContext, id: string): Promise<SelectorModel> {
    return this.ds.transaction(async (em) => {
      const found = await em.getRepository(SelectorModel).findOneBy({ id, projectId: ctx.projectId });
      if (!found) throw new DomainError(ErrorCode.NOT_FOUND, 'Selector model not found', 'id');
      return this.activateIn(em, ctx, found);
    });
  }

  private async activateIn(em: EntityManager, ctx: RequestContext, model: SelectorModel): Promise<SelectorModel> {
    await em.query(`UPDATE selector_models SET active = false, updated_at = now() WHERE project_id = $1 AND active AND id <> $2`, [ctx.projectId, model.id]);
    await em.query(`UPDATE selector_models SET active = true, updated_at = now() WHERE id = $1`, [model.id]);
    model.active = true;
    return model;
  }

  /** For workers: a runner for a selector version, loaded once per process. */
  runnerFor(model: SelectorModel): Promise<SelectorRunner> {
    let runner = this.runners.get(model.id);
    if (!runner) {
      runner = this.loadRunner(model);
      runner.catch(() => this.runners.delete(model.id));
      this.runners.set(model.id, runner);
    }
    return runner;
  }

  async close(): Promise<void> {
    this.runners.clear();
    await this.sessions.close();
  }

  private async loadRunner(model: SelectorModel): Promise<SelectorRunner> {
    const manifest = selectorManifestSchema.parse(model.manifest);
    const read = async (name: SelectorFileName) => {
      const blob = await this.storage.get(model.files[name].key);
      if (!blob) throw new Error(`The stored ${SELECTOR_FILE_NAMES[name]} of selector ${model.name} v${model.version} is missing`);
      return blob.bytes;
    };
    const [session, tokenizerBytes] = await Promise.all([this.sessions.get(model.id, () => read('model')), read('tokenizer')]);
    return new SelectorRunner(session, loadTokenizer(tokenizerBytes.toString('utf8')), manifest);
  }

  private async validate(ctx: RequestContext, files: SelectorFiles) {
    const bytes = checkModelFiles(files, SELECTOR_FILE_NAMES, this.options.maxBytes);

    const manifest = parseManifest(bytes.manifest);
    if (typeof manifest === 'string') throw fileError('manifest', UserErrorCode.INVALID, `selector.json is not a valid manifest: ${manifest}`);

    const tokenizer = checkedTokenizer(bytes.tokenizer, manifest.text.maxLength);
    const loaded = await checkedSession(this.runtime, bytes.model);
    try {
      const { inputs, outputs } = loaded;
      const problems = contractProblems(inputs, outputs, manifest);
      if (problems.length) throw fileError('model', UserErrorCode.INVALID, `model.onnx does not fit the selector contract: ${problems.join('; ')}`);
      const runner = new SelectorRunner(loaded, tokenizer, manifest);
      const sample = await this.dryRunSample(ctx, manifest);
      let score: number;
      try {
        [score] = await runner.score([sample]);
      } catch (error) {
        throw fileError('model', UserErrorCode.INVALID, `The dry run failed: ${firstLine(error)}`);
      }
      if (!Number.isFinite(score)) throw fileError('model', UserErrorCode.INVALID, `The dry run gave a score of ${score}, not a finite number`);
      return { bytes, manifest, signature: { inputs, outputs }, dryRunScore: score };
    } finally {
      await loaded.release().catch(() => undefined);
    }
  }

  /** One real sample of the project (its latest OK candidate with image bytes), or a neutral synthetic one before any exists. */
  private async dryRunSample(ctx: RequestContext, manifest: SelectorManifest) {
    const found = await this.candidates.latestOkWithImage(ctx);
    const file = found?.image?.contentHash ? await this.images.readFile(found.image, 'original') : null;
    if (found?.image && file) {
      const source: SelectorTextSource = { caption: found.image.caption, mentions: found.image.mentions, rounds: found.rounds };
      return { pixels: await imagePixels(file.bytes, manifest), text: selectorText(source, manifest) };
    }
    const grey = await sharp({ create: { width: manifest.image.size, height: manifest.image.size, channels: 3, background: '#808080' } }).png().toBuffer();
    return { pixels: await imagePixels(grey, manifest), text: 'A biomedical figure. What does the image show? It shows a figure.' };
  }

  private async storeFiles(ctx: RequestContext, bytes: Record<SelectorFileName, Buffer>): Promise<Record<SelectorFileName, StoredSelectorFile>> {
    const stored = {} as Record<SelectorFileName, StoredSelectorFile>;
    for (const name of ['model', 'tokenizer', 'manifest'] as const) {
      const hash = sha256(bytes[name]);
      const key = `selectors/${ctx.projectId}/${hash}`;
      await this.storage.put(key, bytes[name], name === 'model' ? 'application/octet-stream' : 'application/json');
      stored[name] = { key, sha256: hash, bytes: bytes[name].length };
    }
    return stored;
  }
}

function parseManifest(bytes: Buffer): SelectorManifest | string {
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch (error) {
    return `not JSON (${firstLine(error)})`;
  }
  const parsed = selectorManifestSchema.safeParse(json);
  if (!parsed.success) return parsed.error.issues.map((i) => `${i.path.join('.') || 'manifest'}: ${i.message}`).join('; ');
  return parsed.data;
}
