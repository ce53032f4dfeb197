import crypto from 'node:crypto';
import { DataSource } from 'typeorm';
import { logger } from '../../platform/logging';
import { CandidatesService } from '../candidates/candidates.service';
import { ImagesService } from '../images/images.service';
import { PreferencesService } from '../preferences/preferences.service';
import { RequestContext } from '../projects/request-context';
import { Run, RunKind } from '../runs/run.entity';
import { RunsService } from '../runs/runs.service';
import { ParsedRunKind, RunAttempt, RunControl } from '../runs/run-executor';
import { SelectorModel } from '../selectors/selector-model.entity';
import { SelectorsService } from '../selectors/selectors.service';
import { imagePixels, judgedItemSource, selectorText } from '../selectors/selector-inputs';
import type { SelectorRunner } from '../selectors/selector-runner';
import { itemKey, PairItem, PreferenceRecord, TrainingPair, toAlignmentPairs } from '../training/preference-pairs';
import { evaluateSelectorAlignment } from './alignment-metrics';
import { busiestJudge, heldOutClinicianPairs, judgeItemScores, pairItems, scoredPairs } from './held-out-pairs';
import { EvaluationSubject, SelectorEvaluation } from './selector-evaluation.entity';
import { EvaluationParams, evaluationParamsSchema, judgementRecords } from './evaluation.service';

/** How an evaluation item (one selector, or the judge) ended, in the run's countsByStatus. */
enum EvaluationOutcome {
  EVALUATED = 'EVALUATED',
  FAILED = 'FAILED',
}

const selectorKey = (id: string) => `selector:${id}`;
const judgeKey = (model: string) => `judge:${model}`;
/** The run's item key for the judge before its model is known. */
const JUDGE_ITEM = 'judge';
/** Images preprocessed at a time while scoring: bounds the pixels held in memory. */
const IMAGES_PER_CHUNK = 32;

interface ItemText {
  key: string;
  imageId: string;
  textHash: string;
  text: string;
}

/**
 * Measures each selector and the model judge on the same held-out clinician pairs. A selector
 * scores every judged answer with the full model on (image, the answer's own text: judgedItemSource),
 * so any selector, uploaded or trained, is measured the same way; scores are cached per (selector,
 * image, text hash). Each selector's (and the judge's) result is one row written with the run's
 * counters in one statement, so a resumed run only measures what is missing.
 */
export class EvaluationRun extends ParsedRunKind<EvaluationParams> {
  readonly kind = RunKind.EVALUATION;
  protected readonly paramsSchema = evaluationParamsSchema;

  constructor(
    private readonly ds: DataSource,
    private readonly preferences: PreferencesService,
    private readonly candidates: CandidatesService,
    private readonly images: ImagesService,
    private readonly selectors: SelectorsService,
    private readonly runs: RunsService,
  ) {
    super();
  }

  protected async attempt({ run, params, ctx }: RunAttempt<EvaluationParams>, control: RunControl): Promise<void> {
    const records: PreferenceRecord[] = await judgementRecords(ctx, this.preferences, this.candidates, new Date(params.preferencesBefore));
    const pairs = heldOutClinicianPairs(records, params.imageIds ? new Set(params.imageIds) : null);
    const items = pairItems(pairs);
    const judgeModel = params.judge ? (params.judge.model ?? busiestJudge(records)) : null;
    await this.runs.mergeParams(run.id, { heldOut: { pairs: pairs.length, items: items.length, images: new Set(pairs.flatMap((p) => p.imageIds)).size }, ...(params.judge ? { judgeModel } : {}) });

    const done = new Set((await this.ds.query(`SELECT subject_key FROM selector_evaluations WHERE run_id = $1`, [run.id])).map((r: { subject_key: string }) => r.subject_key));
    const failed = await this.runs.failedItemKeys(run.id);
    for (const selectorId of params.selectorModelIds) {
      if (control.signal.aborted) return;
      const key = selectorKey(selectorId);
      if (done.has(key) || failed.has(key)) continue;
      const model = await this.selectors.findById(ctx, selectorId);
      if (!model) {
        await this.runs.recordFailure(run, { itemKey: key, reason: 'The selector model was deleted', attempts: 1 }, { outcome: EvaluationOutcome.FAILED });
        continue;
      }
      const started = performance.now();
      const scores = await this.selectorScores(ctx, run, model, items, params.batchSize, control);
      if (control.signal.aborted) return;
      await this.record(run, params, pairs, scores, { subject: EvaluationSubject.SELECTOR, subjectKey: key, selectorModelId: model.id, judgeModel: null });
      logger.info('selector evaluated', { runId: run.id, selector: `${model.name} v${model.version}`, pairs: pairs.length, ms: Math.round(performance.now() - started) });
    }
    if (params.judge && !control.signal.aborted) {
      if (!judgeModel) {
        if (!failed.has(JUDGE_ITEM)) await this.runs.recordFailure(run, { itemKey: JUDGE_ITEM, reason: 'No model judge has rated answers in this project (run startRatingRun)', attempts: 1 }, { outcome: EvaluationOutcome.FAILED });
      } else if (!done.has(judgeKey(judgeModel))) {
        const scores = judgeItemScores(records, judgeModel, items);
        await this.record(run, params, pairs, scores, { subject: EvaluationSubject.JUDGE, subjectKey: judgeKey(judgeModel), selectorModelId: null, judgeModel });
      }
    }
  }

  /** The metrics on the pairs both of whose answers have a score, written with the run's counters in one statement. */
  private async record(
    run: Run,
    params: EvaluationParams,
    pairs: TrainingPair[],
    scores: ReadonlyMap<string, number>,
    subject: Pick<SelectorEvaluation, 'subject' | 'subjectKey' | 'selectorModelId' | 'judgeModel'>,
  ): Promise<void> {
    const scored = scoredPairs(pairs, scores);
    const bootstrap = { resamples: params.bootstrapSamples, seed: params.seed };
    const report = evaluateSelectorAlignment(toAlignmentPairs(scored.pairs), scores, bootstrap);
    const insert = this.ds
      .createQueryBuilder()
      .insert()
      .into(SelectorEvaluation)
      .values({
        projectId: run.projectId,
        runId: run.id,
        ...subject,
        pairs: report.nPairs,
        pairsWithoutScore: scored.withoutScore,
        ties: report.alignmentRate.ties,
        bootstrapUnits: report.nUnits,
        alignmentRateValue: report.alignmentRate.value,
        aucValue: report.auc.value,
        meanRankValue: report.meanRank.value,
        mapValue: report.meanAveragePrecision.value,
        report: { ...report, bootstrap } as Record<string, any>,
      });
    await this.runs.recordItem(insert, run.id, { done: 1, outcome: EvaluationOutcome.EVALUATED });
  }

  /**
   * The selector's score of each item, by item key: cached scores first, then the model on the
   * missing (image, text) rows, image by image so that only a chunk of images' pixels is held.
   * Items whose candidate is gone or whose image has no readable bytes get no score.
   */
  private async selectorScores(ctx: RequestContext, run: Run, model: SelectorModel, items: PairItem[], batchSize: number, control: RunControl): Promise<Map<string, number>> {
    const runner = await this.selectors.runnerFor(model);
    const texts = await this.itemTexts(ctx, items, runner);
    const scores = new Map<string, number>();
    const cached: { image_id: string; text_hash: string; value: number }[] = await this.ds.query(
      `SELECT image_id, text_hash, value FROM evaluation_item_scores WHERE project_id = $1 AND selector_model_id = $2 AND image_id = ANY($3::uuid[]) AND text_hash = ANY($4::char(64)[])`,
      [run.projectId, model.id, [...new Set(texts.map((t) => t.imageId))], [...new Set(texts.map((t) => t.textHash))]],
    );
    const cache = new Map(cached.map((c) => [`${c.image_id}:${c.text_hash}`, c.value]));
    const missing = new Map<string, ItemText[]>();
    for (const text of texts) {
      const value = cache.get(`${text.imageId}:${text.textHash}`);
      if (value !== undefined) scores.set(text.key, value);
      else missing.set(text.imageId, [...(missing.get(text.imageId) ?? []), text]);
    }
    const imageIds = [...missing.keys()];
    for (let i = 0; i < imageIds.length && !control.signal.aborted; i += IMAGES_PER_CHUNK) {
      const chunk = imageIds.slice(i, i + IMAGES_PER_CHUNK);
      const pixels = await this.pixelsOf(ctx, run.projectId, chunk, runner);
      const rows = chunk.flatMap((imageId) => (pixels.has(imageId) ? missing.get(imageId)! : []));
      // One row per distinct (image, text): two items with the same text (the same answer compared twice) share it.
      const distinct = [...new Map(rows.map((r) => [`${r.imageId}:${r.textHash}`, r])).values()];
      const values = new Map<string, number>();
      for (let b = 0; b < distinct.length; b += batchSize) {
        const batch = distinct.slice(b, b + batchSize);
        const out = await runner.score(batch.map((r) => ({ pixels: pixels.get(r.imageId)!, text: r.text })));
        batch.forEach((r, j) => {
          if (Number.isFinite(out[j])) values.set(`${r.imageId}:${r.textHash}`, out[j]);
        });
      }
      await this.ds.query(
        `INSERT INTO evaluation_item_scores (project_id, selector_model_id, image_id, text_hash, value)
         SELECT $1, $2, s.image_id, s.text_hash, s.value FROM unnest($3::uuid[], $4::char(64)[], $5::float8[]) AS s(image_id, text_hash, value)
         ON CONFLICT (project_id, selector_model_id, image_id, text_hash) DO NOTHING`,
        [run.projectId, model.id, ...unzip([...values].map(([k, v]) => [k.slice(0, 36), k.slice(37), v] as const))],
      );
      for (const r of rows) {
        const value = values.get(`${r.imageId}:${r.textHash}`);
        if (value !== undefined) scores.set(r.key, value);
      }
      control.progressed();
    }
    return scores;
  }

  /** Each item's selector text (judgedItemSource through the selector's own template), with its image. */
  private async itemTexts(ctx: RequestContext, items: PairItem[], runner: SelectorRunner): Promise<ItemText[]> {
    const conversations = await this.candidates.conversations(ctx, [...new Set(items.map((i) => i.candidateId))]);
    const byCandidate = new Map(conversations.map((c) => [c.id, c]));
    const figures = new Map((await this.images.figuresByIds(ctx, [...new Set(conversations.map((c) => c.imageId))])).map((f) => [f.id, f]));
    const texts: ItemText[] = [];
    for (const item of items) {
      const candidate = byCandidate.get(item.candidateId);
      const figure = candidate && figures.get(candidate.imageId);
      if (!candidate || !figure) continue;
      let text: string;
      try {
        text = selectorText(judgedItemSource({ caption: figure.caption, mentions: figure.mentions, rounds: candidate.rounds }, item), runner.manifest);
      } catch {
        continue; // The round or answer no longer exists (the candidate was re-parsed): nothing to score.
      }
      texts.push({ key: itemKey(item), imageId: candidate.imageId, textHash: crypto.createHash('sha256').update(text).digest('hex'), text });
    }
    return texts;
  }

  /** Preprocessed pixels of the images that have readable bytes. */
  private async pixelsOf(ctx: RequestContext, projectId: string, imageIds: string[], runner: SelectorRunner): Promise<Map<string, Float32Array>> {
    const figures = await this.images.figuresByIds(ctx, imageIds);
    const hashes = [...new Set(figures.map((f) => f.contentHash).filter((h): h is string => !!h))];
    const bytes = await this.images.originalsByHash(projectId, hashes);
    const byHash = new Map<string, Float32Array>();
    await Promise.all(
      hashes.map(async (hash) => {
        const original = bytes.get(hash);
        if (!original) return;
        try {
          byHash.set(hash, await imagePixels(original, runner.manifest));
        } catch (error) {
          logger.warn('evaluation: image could not be preprocessed', { contentHash: hash, error: String((error as Error).message).split('\n')[0] });
        }
      }),
    );
    const pixels = new Map<string, Float32Array>();
    for (const f of figures) if (f.contentHash && byHash.has(f.contentHash)) pixels.set(f.id, byHash.get(f.contentHash)!);
    return pixels;
  }
}

function unzip(rows: (readonly [string, string, number])[]): [string[], string[], number[]] {
  return [rows.map((r) => r[0]), rows.map((r) => r[1]), rows.map((r) => r[2])];
}
