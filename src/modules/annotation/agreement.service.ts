import { DataSource } from 'typeorm';
import { DomainError, ErrorCode, notFound } from '../../platform/errors';
import { expectGlobalId } from '../../platform/ids';
import { evaluateJudgeAlignment, evaluateSelectorAlignment, PreferencePair } from '../evaluation';
import type { CandidatesService } from '../candidates/candidates.service';
import type { ImagesService } from '../images/images.service';
import { campaignJudgements, judgeRatings } from '../preferences/preferences.queries';
import type { RequestContext } from '../projects/request-context';
import { Role } from '../projects/role';
import { scoreValues } from '../scoring/scoring.queries';
import { imagePixels, judgedItemSource, selectorText } from '../selectors/selector-inputs';
import type { SelectorModel } from '../selectors/selector-model.entity';
import type { SelectorsService } from '../selectors/selectors.service';
import { campaignAgreement, CampaignAgreement, clinicianPairs, ClinicianPair, JudgedItemKey, Judgement } from './campaign-agreement';

/** The campaigns this service may read: the annotation service's lookup, scoped to the caller's project. */
export interface CampaignLookup {
  findCampaign(ctx: RequestContext, id: string): Promise<{ id: string; blind: boolean } | null>;
}

/**
 * Whether the caller may read a campaign's agreement. Every member may (VIEWER up), except a
 * CLINICIAN in a blind campaign: per-pair kappas read after each of their submissions would tell them
 * how another clinician judged the items they share, which is what blindness hides (the preferences
 * module hides other clinicians' campaign judgements from clinicians for the same reason). Curators
 * and owners, who do not annotate, see everything.
 */
export function mayReadAgreement(ctx: RequestContext, campaign: { blind: boolean }): boolean {
  return !(campaign.blind && ctx.role === Role.CLINICIAN);
}

/** A campaign's agreement with the judgements behind it (the judge and selector figures are computed from them on demand). */
export interface CampaignAgreementView extends CampaignAgreement {
  campaignId: string;
  judgements: Judgement[];
}

/** How often a model (the judge or a selector) orders the judged items as the clinicians did. */
export interface ModelAlignment {
  /** The judge's model name, for the judge. */
  judgeModel: string | null;
  /** The selector scored with, for a selector. */
  selectorModelId: string | null;
  /** Clinician orderings in the campaign (one per clinician per comparison). */
  clinicianPairs: number;
  /** Those the model gave a score to both sides of: the alignment rate's pairs. */
  scoredPairs: number;
  /** Scored pairs the model scored equal (each counts ½). */
  ties: number;
  /** Share of scored pairs the model orders as the clinician did; null without scored pairs. */
  alignmentRate: number | null;
  /** 95 % percentile bootstrap interval, resampling whole candidates (seed 0, 1,000 resamples). */
  intervalLow: number | null;
  intervalHigh: number | null;
  /** Answers the selector could not score (no image bytes, an image that does not decode, over the cap). */
  unscoredItems: number;
}

/** The judge and a selector on the same clinician pairs. */
export interface SameItemsComparison {
  judgeModel: string | null;
  selectorModelId: string;
  clinicianPairs: number;
  /** Pairs both the judge and the selector scored on both sides. */
  pairs: number;
  judge: Pick<ModelAlignment, 'alignmentRate' | 'intervalLow' | 'intervalHigh' | 'ties'>;
  selector: Pick<ModelAlignment, 'alignmentRate' | 'intervalLow' | 'intervalHigh' | 'ties'>;
}

/**
 * The answers scored with the full selector in one request at most. Each costs an ONNX row (plus
 * its image, decoded once per image): at the reference selector's pace that is a few seconds.
 * A larger campaign reports the pairs over the first answers and counts the rest as unscored;
 * an evaluation run (issue 11) is the tool for a full held-out set.
 */
export const MAX_SELECTOR_ANSWERS = 2000;
const SELECTOR_BATCH = 64;

/**
 * Agreement figures of annotation campaigns (issue 12): between clinicians (campaign-agreement.ts)
 * and between the clinicians and the model judge or a selector. Reads go through the owner
 * modules' set-based reads: one statement for any number of campaigns' judgements.
 */
export class AnnotationAgreementService {
  constructor(
    private readonly ds: DataSource,
    private readonly campaigns: CampaignLookup,
    private readonly selectors: SelectorsService,
    private readonly candidates: CandidatesService,
    private readonly images: ImagesService,
  ) {}

  /** The agreement of a campaign named by its global id; NOT_FOUND when it is not the caller's project's. */
  async forCampaign(ctx: RequestContext, campaignGlobalId: string): Promise<CampaignAgreementView> {
    const campaign = await this.campaigns.findCampaign(ctx, expectGlobalId(campaignGlobalId, 'AnnotationCampaign', 'campaignId'));
    if (!campaign) throw notFound('Annotation campaign');
    if (!mayReadAgreement(ctx, campaign)) throw new DomainError(ErrorCode.FORBIDDEN, 'Clinicians do not see the agreement of a blind campaign: it would tell them how others judged');
    return (await this.forCampaigns(ctx, [campaign.id]))[0];
  }

  /** The agreement of campaigns already known to be the caller's (a DataLoader's batch): one statement. */
  async forCampaigns(ctx: RequestContext, campaignIds: readonly string[]): Promise<CampaignAgreementView[]> {
    const judgements = await campaignJudgements(this.ds.manager, ctx.projectId, campaignIds);
    return campaignIds.map((campaignId) => {
      const rows = judgements.get(campaignId) ?? [];
      return { campaignId, judgements: rows, ...campaignAgreement(rows) };
    });
  }

  /**
   * The model judge against the clinicians: its rating of each answer (of the judge that rated the
   * campaign's candidates last, averaged over its runs), and for a comparison of two candidates the
   * mean rating of each candidate's answers. A pair whose two sides the judge did not both rate is
   * left out of the rate (and counted).
   */
  async judgeAlignment(ctx: RequestContext, view: CampaignAgreementView): Promise<ModelAlignment> {
    const pairs = clinicianPairs(view.judgements);
    const { judgeModel, scores } = await this.judgeScores(ctx, pairs);
    return { ...alignmentOf(pairs, scores, 'judge'), judgeModel, selectorModelId: null, unscoredItems: 0 };
  }

  /**
   * A selector (the active one unless named) against the clinicians. A whole candidate is scored by
   * its stored score (a scoring run's); an answer is scored by running the full selector on the
   * image and judgedItemSource's text of that answer (the round alone, that answer first), exactly as
   * training and evaluation score what was compared. A candidate score cannot order two answers of
   * one candidate, which is what ACCEPTANCE and RATING compare, hence the live scoring.
   * Null when the project has no active selector and none is named.
   */
  async selectorAlignment(ctx: RequestContext, view: CampaignAgreementView, selectorGlobalId?: string | null): Promise<ModelAlignment | null> {
    const model = await this.selectorFor(ctx, selectorGlobalId);
    if (!model) return null;
    const pairs = clinicianPairs(view.judgements);
    const { scores, unscored } = await this.selectorScores(ctx, model, pairs);
    return { ...alignmentOf(pairs, scores, 'selector'), judgeModel: null, selectorModelId: model.id, unscoredItems: unscored };
  }

  /**
   * The judge and a selector on exactly the same clinician pairs (those both scored on both sides),
   * so their rates compare like for like; null without a selector.
   */
  async judgeAndSelector(ctx: RequestContext, view: CampaignAgreementView, selectorGlobalId?: string | null): Promise<SameItemsComparison | null> {
    const model = await this.selectorFor(ctx, selectorGlobalId);
    if (!model) return null;
    const pairs = clinicianPairs(view.judgements);
    const judge = await this.judgeScores(ctx, pairs);
    const selector = await this.selectorScores(ctx, model, pairs);
    const both = pairs.filter((p) => [p.preferred.key, p.rejected.key].every((k) => judge.scores.has(k) && selector.scores.has(k)));
    return {
      judgeModel: judge.judgeModel,
      selectorModelId: model.id,
      clinicianPairs: pairs.length,
      pairs: both.length,
      judge: alignmentOf(both, judge.scores, 'judge'),
      selector: alignmentOf(both, selector.scores, 'selector'),
    };
  }

  private async selectorFor(ctx: RequestContext, selectorGlobalId?: string | null): Promise<SelectorModel | null> {
    if (!selectorGlobalId) return this.selectors.findActive(ctx);
    const model = await this.selectors.findById(ctx, expectGlobalId(selectorGlobalId, 'SelectorModel', 'selectorModelId'));
    if (!model) throw notFound('Selector model');
    return model;
  }

  /** The judge's score of each side of the pairs it rated (see judgeAlignment). */
  private async judgeScores(ctx: RequestContext, pairs: readonly ClinicianPair[]): Promise<{ judgeModel: string | null; scores: Map<string, number> }> {
    const candidateIds = [...new Set(pairs.flatMap((p) => [p.preferred.candidateId, p.rejected.candidateId]))];
    const { judgeModel, ratings } = await judgeRatings(this.ds.manager, ctx.projectId, candidateIds);
    const scores = new Map<string, number>();
    const perCandidate = new Map<string, number[]>();
    for (const r of ratings) {
      scores.set(itemKeyOf(r.candidateId, r.roundIndex, r.answerIndex), r.rating);
      perCandidate.set(r.candidateId, [...(perCandidate.get(r.candidateId) ?? []), r.rating]);
    }
    // A whole candidate (pairwise between candidates, round given or not): the mean of its rated answers.
    for (const p of pairs) {
      for (const side of [p.preferred, p.rejected]) {
        if (side.answerIndex === null && !scores.has(side.key) && perCandidate.has(side.candidateId)) scores.set(side.key, mean(perCandidate.get(side.candidateId)!));
      }
    }
    return { judgeModel, scores };
  }

  /** The selector's score of each side of the pairs (see selectorAlignment), and how many answers it could not score. */
  private async selectorScores(ctx: RequestContext, model: SelectorModel, pairs: readonly ClinicianPair[]): Promise<{ scores: Map<string, number>; unscored: number }> {
    const items = new Map<string, JudgedItemKey>();
    for (const p of pairs) for (const side of [p.preferred, p.rejected]) items.set(side.key, side);
    const wholeCandidates = [...items.values()].filter((i) => i.answerIndex === null);
    const answers = [...items.values()].filter((i) => i.answerIndex !== null);
    const stored = await scoreValues(this.ds.manager, ctx.projectId, model.id, [...new Set(wholeCandidates.map((i) => i.candidateId))]);
    const scores = new Map<string, number>();
    for (const item of wholeCandidates) if (stored.has(item.candidateId)) scores.set(item.key, stored.get(item.candidateId)!);
    const { scored, unscored } = await this.scoreAnswers(ctx, model, answers);
    for (const [key, value] of scored) scores.set(key, value);
    return { scores, unscored };
  }

  /** Runs the selector on each answer's (image, text); returns the finite scores and how many answers got none. */
  private async scoreAnswers(ctx: RequestContext, model: SelectorModel, answers: JudgedItemKey[]): Promise<{ scored: Map<string, number>; unscored: number }> {
    const scored = new Map<string, number>();
    const taken = answers.slice(0, MAX_SELECTOR_ANSWERS);
    let unscored = answers.length - taken.length;
    if (taken.length === 0) return { scored, unscored };
    const runner = await this.selectors.runnerFor(model);
    const conversations = await this.candidates.conversations(ctx, [...new Set(taken.map((a) => a.candidateId))]);
    const figures = await this.images.figuresByIds(ctx, [...new Set(conversations.map((c) => c.imageId))]);
    const figureById = new Map(figures.map((f) => [f.id, f]));
    const originals = await this.images.originalsByHash(ctx.projectId, [...new Set(figures.map((f) => f.contentHash).filter((h): h is string => !!h))]);
    const pixelsByHash = new Map<string, Float32Array | null>();
    for (const [hash, bytes] of originals) pixelsByHash.set(hash, await imagePixels(bytes, runner.manifest).catch(() => null));
    const conversationById = new Map(conversations.map((c) => [c.id, c]));

    const rows: { key: string; pixels: Float32Array; text: string }[] = [];
    for (const answer of taken) {
      const conversation = conversationById.get(answer.candidateId);
      const figure = conversation ? figureById.get(conversation.imageId) : undefined;
      const pixels = figure?.contentHash ? pixelsByHash.get(figure.contentHash) : null;
      let text: string | null = null;
      try {
        if (conversation && figure) text = selectorText(judgedItemSource({ caption: figure.caption, mentions: figure.mentions, rounds: conversation.rounds }, answer), runner.manifest);
      } catch {
        text = null; // the round or answer no longer exists in the candidate
      }
      if (pixels && text !== null) rows.push({ key: answer.key, pixels, text });
      else unscored++;
    }
    for (let start = 0; start < rows.length; start += SELECTOR_BATCH) {
      const batch = rows.slice(start, start + SELECTOR_BATCH);
      const values = await runner.score(batch.map((r) => ({ pixels: r.pixels, text: r.text })));
      batch.forEach((row, i) => {
        if (Number.isFinite(values[i])) scored.set(row.key, values[i]);
        else unscored++;
      });
    }
    return { scored, unscored };
  }
}

function itemKeyOf(candidateId: string, roundIndex: number | null, answerIndex: number | null): string {
  return roundIndex === null && answerIndex === null ? candidateId : `${candidateId}:${roundIndex ?? '-'}:${answerIndex ?? '-'}`;
}

function mean(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0) / values.length;
}

/**
 * The alignment rate over the pairs whose two sides have a score, with evaluation's seeded
 * bootstrap interval resampling whole candidates: the judge's report checks its 0-10 ratings,
 * the selector's takes any scores.
 */
function alignmentOf(pairs: readonly ClinicianPair[], scores: ReadonlyMap<string, number>, scorer: 'judge' | 'selector'): Pick<ModelAlignment, 'clinicianPairs' | 'scoredPairs' | 'ties' | 'alignmentRate' | 'intervalLow' | 'intervalHigh'> {
  const scoredPairs: PreferencePair[] = pairs
    .filter((p) => scores.has(p.preferred.key) && scores.has(p.rejected.key))
    .map((p) => ({ preferred: p.preferred.key, rejected: p.rejected.key, group: p.group, cluster: p.preferred.candidateId }));
  const rate = (scorer === 'judge' ? evaluateJudgeAlignment(scoredPairs, scores) : evaluateSelectorAlignment(scoredPairs, scores)).alignmentRate;
  return { clinicianPairs: pairs.length, scoredPairs: scoredPairs.length, ties: rate.ties, alignmentRate: rate.value, intervalLow: rate.interval.low, intervalHigh: rate.interval.high };
}
