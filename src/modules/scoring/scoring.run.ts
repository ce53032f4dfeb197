import { DataSource } from 'typeorm';
import { logger } from '../../platform/logging';
import type { StoredRound } from '../candidates/conversation';
import { ImagesService, ImageText } from '../images/images.service';
import { Run, RunKind } from '../runs/run.entity';
import { RequestContext } from '../projects/request-context';
import { CandidatesService } from '../candidates/candidates.service';
import { RunsService } from '../runs/runs.service';
import { ParsedRunKind, RunAttempt, RunControl } from '../runs/run-executor';
import { PermanentRunError } from '../runs/run-errors';
import { SelectorModel } from '../selectors/selector-model.entity';
import { SelectorsService } from '../selectors/selectors.service';
import { RunnerTimings, SelectorRunner, SelectorRow } from '../selectors/selector-runner';
import { imagePixels, preprocessingKey, selectorText } from '../selectors/selector-inputs';
import { ScoringParams, scoringParamsSchema } from './scoring.service';
import { TrainedSelectorScorer } from './trained-scoring';

/** Where a scoring attempt spent its time, in milliseconds. */
export interface ScoringTimings extends RunnerTimings {
  fetchMs: number;
  preprocessMs: number;
  writeMs: number;
}

interface PendingCandidate {
  id: string;
  imageId: string;
}

interface CandidateRow {
  id: string;
  rounds: StoredRound[];
  caption: string;
  mentions: string[];
  content_hash: string | null;
}

interface FetchedItem {
  id: string;
  row: CandidateRow | undefined;
  pixels: Float32Array | undefined;
  /** Why the candidate cannot be scored; null when it can. */
  reason: string | null;
}

interface ScoredBatch {
  scored: { id: string; value: number }[];
  failed: { id: string; reason: string }[];
}

/** How a scoring item ended, as counted in the run's countsByStatus. */
enum ScoringOutcome {
  SCORED = 'SCORED',
  FAILED = 'FAILED',
  SKIPPED = 'SKIPPED',
}

export const scoringItemKey = (candidateId: string) => `candidate:${candidateId}`;

const NO_BYTES = 'The image has no stored bytes';

/**
 * Preprocessed images by (preprocessing, content hash), bounded by bytes. Candidates are streamed
 * grouped by image, so each image is decoded once per run and shared by all its candidates.
 */
export class PixelCache {
  private readonly entries = new Map<string, Float32Array>();
  private bytes = 0;

  constructor(private readonly maxBytes: number) {}

  get(key: string): Float32Array | undefined {
    const value = this.entries.get(key);
    if (value) {
      this.entries.delete(key);
      this.entries.set(key, value);
    }
    return value;
  }

  set(key: string, value: Float32Array): void {
    if (this.entries.has(key)) return;
    this.entries.set(key, value);
    this.bytes += value.byteLength;
    for (const [oldest, old] of this.entries) {
      if (this.bytes <= this.maxBytes || oldest === key) break;
      this.entries.delete(oldest);
      this.bytes -= old.byteLength;
    }
  }
}

const PIXEL_CACHE_BYTES = 64 * 1024 * 1024;
/**
 * Batches being fetched (rows, image bytes, preprocessing) while the current one is scored. One is
 * not enough: a batch's database reads and its image decoding run one after the other, so with a
 * light model the loop waited on them; with more in flight, one batch's reads overlap another's decoding.
 */
const FETCH_AHEAD = 3;

/**
 * Scores a run's frozen candidates with one selector: batches stream through fetch → preprocess
 * and tokenize → ONNX Runtime → one write per batch, with the next batches fetched while the
 * current one is scored. Each batch's scores, failures and counters commit in one statement, and a resumed
 * run only takes candidates with neither a score nor a failure.
 */
export class ScoringRun extends ParsedRunKind<ScoringParams> {
  readonly kind = RunKind.SCORING;
  protected readonly paramsSchema = scoringParamsSchema;
  private readonly pixels = new PixelCache(PIXEL_CACHE_BYTES);
  /** Images being read and preprocessed, by project and cache key, so concurrent fetches share the work. */
  private readonly preprocessing = new Map<string, Promise<Float32Array | string>>();

  constructor(
    private readonly ds: DataSource,
    private readonly candidates: CandidatesService,
    private readonly selectors: SelectorsService,
    private readonly images: ImagesService,
    private readonly runs: RunsService,
    private readonly trained?: TrainedSelectorScorer,
  ) {
    super();
  }

  protected async attempt({ run, params, ctx }: RunAttempt<ScoringParams>, control: RunControl): Promise<void> {
    const model = await this.selectors.findById(ctx, params.selectorModelId);
    if (!model) throw new PermanentRunError('The selector model was deleted');
    if (model.head && this.trained) return this.scoreTrained(ctx, run, model, params.batchSize, control);
    const runner = await this.selectors.runnerFor(model);
    const timings: ScoringTimings = { fetchMs: 0, preprocessMs: 0, tokenizeMs: 0, inferMs: 0, writeMs: 0 };
    const started = performance.now();
    try {
      const { pending, scoredByOtherRuns } = await this.pending(ctx, run.id, model.id);
      await this.runs.setSkipped(run.id, scoredByOtherRuns, ScoringOutcome.SKIPPED);
      timings.fetchMs += performance.now() - started;
      await this.scoreAll(ctx, run, model, runner, pending, params.batchSize, control, timings);
    } finally {
      const totalMs = performance.now() - started;
      await this.runs.addMetrics(run.id, { ...roundAll(timings), totalMs: Math.round(totalMs) }).catch(() => undefined);
      logger.info('scoring attempt finished', { runId: run.id, ...roundAll(timings), totalMs: Math.round(totalMs) });
    }
  }

  private async scoreAll(ctx: RequestContext, run: Run, model: SelectorModel, runner: SelectorRunner, pending: PendingCandidate[], batchSize: number, control: RunControl, timings: ScoringTimings): Promise<void> {
    const batches: PendingCandidate[][] = [];
    for (let i = 0; i < pending.length; i += batchSize) batches.push(pending.slice(i, i + batchSize));
    const ahead: Promise<FetchedItem[]>[] = [];
    let fetched = 0;
    const fetchAhead = () => {
      while (ahead.length < FETCH_AHEAD && fetched < batches.length && !control.signal.aborted) {
        const next = this.fetch(ctx, run, runner, batches[fetched++], timings);
        // Awaited in turn below; a fetch left behind by an abort must not become an unhandled rejection.
        next.catch(() => undefined);
        ahead.push(next);
      }
    };
    fetchAhead();
    let writing: Promise<void> = Promise.resolve();
    try {
      while (ahead.length && !control.signal.aborted) {
        const rows = await ahead.shift()!;
        fetchAhead();
        const batch = await this.score(run, runner, rows, timings);
        await writing;
        if (control.signal.aborted) break;
        writing = this.write(run, model, batch, timings);
      }
    } catch (error) {
      // The batch being written settles before the attempt reports its error.
      await writing.catch(() => undefined);
      throw error;
    }
    await writing;
  }

  /**
   * A selector trained in the service: stored embeddings and the head only (trained-scoring.ts),
   * batch by batch, each written as the ONNX path writes it.
   */
  private async scoreTrained(ctx: RequestContext, run: Run, model: SelectorModel, batchSize: number, control: RunControl): Promise<void> {
    const timings: ScoringTimings = { fetchMs: 0, preprocessMs: 0, tokenizeMs: 0, inferMs: 0, writeMs: 0 };
    const started = performance.now();
    const { pending, scoredByOtherRuns } = await this.pending(ctx, run.id, model.id);
    await this.runs.setSkipped(run.id, scoredByOtherRuns, ScoringOutcome.SKIPPED);
    for (let i = 0; i < pending.length && !control.signal.aborted; i += batchSize) {
      const before = performance.now();
      const batch = await this.trained!.score(ctx, model, pending.slice(i, i + batchSize).map((p) => p.id), control.signal);
      timings.inferMs += performance.now() - before;
      if (control.signal.aborted) break;
      await this.write(run, model, batch, timings);
    }
    await this.runs.addMetrics(run.id, { ...roundAll(timings), totalMs: Math.round(performance.now() - started) }).catch(() => undefined);
  }

  /**
   * Candidates with neither a score from this selector nor a failure in this run (keyed as
   * `scoringItemKey` does), grouped by image; and how many targets another run already scored with
   * this selector, left alone and counted as skipped so that done + failed + skipped = total.
   */
  private async pending(ctx: RequestContext, runId: string, selectorModelId: string): Promise<{ pending: PendingCandidate[]; scoredByOtherRuns: number }> {
    const [targets, failed] = await Promise.all([this.runs.targetIds(runId), this.runs.failedItemKeys(runId)]);
    const scored: { candidate_id: string; by_this_run: boolean }[] = await this.ds.query(
      `SELECT candidate_id, run_id IS NOT DISTINCT FROM $3 AS by_this_run FROM scores WHERE selector_model_id = $1 AND candidate_id = ANY($2::uuid[])`,
      [selectorModelId, targets, runId],
    );
    const settled = new Set(scored.map((s) => s.candidate_id));
    const scoredByOtherRuns = scored.filter((s) => !s.by_this_run && !failed.has(scoringItemKey(s.candidate_id))).length;
    const open = targets.filter((id) => !settled.has(id) && !failed.has(scoringItemKey(id)));
    return { pending: await this.candidates.imagesOf(ctx, open), scoredByOtherRuns };
  }

  /** The batch's candidates with their figures, and each image's preprocessed pixels (null when it has no bytes or does not decode). */
  private async fetch(ctx: RequestContext, run: Run, runner: SelectorRunner, batch: PendingCandidate[], timings: ScoringTimings): Promise<FetchedItem[]> {
    let started = performance.now();
    // Each figure once, not once per candidate: a batch holds a few images with many candidates each.
    const [candidates, figures] = await Promise.all([
      this.candidates.conversations(ctx, batch.map((b) => b.id)),
      this.images.figuresByIds(ctx, [...new Set(batch.map((b) => b.imageId))]),
    ]);
    const figureById = new Map<string, ImageText>(figures.map((f) => [f.id, f]));
    const byId = new Map<string, CandidateRow>();
    for (const c of candidates) {
      const figure = figureById.get(c.imageId);
      if (figure) byId.set(c.id, { id: c.id, rounds: c.rounds, caption: figure.caption, mentions: figure.mentions, content_hash: figure.contentHash });
    }
    const hashes = [...new Set([...byId.values()].map((r) => r.content_hash).filter((h): h is string => !!h))];
    const prefix = preprocessingKey(runner.manifest);
    // Pixels are taken as soon as they are known, so a cache eviction while this batch waits cannot lose them.
    const pixels = new Map<string, Float32Array>();
    // An image at the edge of two batches fetched at once is read and decoded by the first of them
    // only. In flight by project: bytes are stored per project, and a missing one must not fail another's.
    const waiting = new Map<string, Promise<Float32Array | string>>();
    const missing: string[] = [];
    for (const hash of hashes) {
      const cached = this.pixels.get(`${prefix}:${hash}`);
      const inFlight = cached ? undefined : this.preprocessing.get(`${run.projectId}:${prefix}:${hash}`);
      if (cached) pixels.set(hash, cached);
      else if (inFlight) waiting.set(hash, inFlight);
      else missing.push(hash);
    }
    const reading = this.images.originalsByHash(run.projectId, missing);
    for (const hash of missing) {
      const flightKey = `${run.projectId}:${prefix}:${hash}`;
      const done = reading.then((bytes) => this.preprocess(`${prefix}:${hash}`, bytes.get(hash), runner)).finally(() => this.preprocessing.delete(flightKey));
      // Awaited below unless the read fails, which this fetch then throws.
      done.catch(() => undefined);
      this.preprocessing.set(flightKey, done);
      waiting.set(hash, done);
    }
    await reading;
    timings.fetchMs += performance.now() - started;

    started = performance.now();
    const failures = new Map<string, string>();
    await Promise.all(
      [...waiting].map(async ([hash, done]) => {
        const result = await done;
        if (typeof result === 'string') failures.set(hash, result);
        else pixels.set(hash, result);
      }),
    );
    timings.preprocessMs += performance.now() - started;
    return batch.map((b) => {
      const row = byId.get(b.id);
      const hash = row?.content_hash ?? null;
      const image = hash ? pixels.get(hash) : undefined;
      const reason = !row ? 'The candidate was deleted' : !hash ? NO_BYTES : (failures.get(hash) ?? (image ? null : NO_BYTES));
      return { id: b.id, row, pixels: image, reason };
    });
  }

  /** One image's pixels, cached; or why there are none. */
  private async preprocess(key: string, original: Buffer | undefined, runner: SelectorRunner): Promise<Float32Array | string> {
    if (!original) return NO_BYTES;
    try {
      const pixels = await imagePixels(original, runner.manifest);
      this.pixels.set(key, pixels);
      return pixels;
    } catch (error) {
      return `The image could not be preprocessed: ${String((error as Error).message).split('\n')[0]}`;
    }
  }

  private async score(run: Run, runner: SelectorRunner, items: FetchedItem[], timings: ScoringTimings): Promise<ScoredBatch> {
    const failed: ScoredBatch['failed'] = items.filter((i) => i.reason).map((i) => ({ id: i.id, reason: i.reason! }));
    const ready = items.filter((i) => !i.reason);
    const rows: SelectorRow[] = ready.map((i) => ({ pixels: i.pixels!, text: selectorText({ caption: i.row!.caption, mentions: i.row!.mentions, rounds: i.row!.rounds }, runner.manifest) }));
    const values = await runner.score(rows, timings);
    const scored: ScoredBatch['scored'] = [];
    ready.forEach((item, index) => {
      const value = values[index];
      if (Number.isFinite(value)) scored.push({ id: item.id, value });
      else failed.push({ id: item.id, reason: `The selector gave a non-finite score (${value})` });
    });
    return { scored, failed };
  }

  /** Scores, failures and the run's counters in one statement: all of the batch or none of it. */
  private async write(run: Run, model: SelectorModel, batch: ScoredBatch, timings: ScoringTimings): Promise<void> {
    const started = performance.now();
    await this.runs.recordBatch(
      run,
      {
        sql: `INSERT INTO scores (project_id, candidate_id, selector_model_id, value, run_id)
              SELECT $1, s.id, $2, s.value, $3 FROM unnest($4::uuid[], $5::float8[]) AS s(id, value)
              ON CONFLICT (candidate_id, selector_model_id) DO NOTHING`,
        params: [run.projectId, model.id, run.id, batch.scored.map((s) => s.id), batch.scored.map((s) => s.value)],
        offered: batch.scored.length,
      },
      batch.failed.map((f) => ({ itemKey: scoringItemKey(f.id), reason: f.reason })),
      { done: ScoringOutcome.SCORED, failed: ScoringOutcome.FAILED, skipped: ScoringOutcome.SKIPPED },
    );
    timings.writeMs += performance.now() - started;
  }
}

function roundAll(timings: ScoringTimings): Record<string, number> {
  return Object.fromEntries(Object.entries(timings).map(([k, v]) => [k, Math.round(v)]));
}
