/**
 * Training pairs for the selector's pairwise ranking loss (issue 11), built from preference
 * records, and the held-out clinician validation split by image.
 *
 * Hand-written: this is domain logic (which judgements compare which answers, how much each
 * counts), not something a package provides. Pure functions over plain records: the job that
 * loads preferences and trains comes later.
 */
import type { PairwiseChoice, PreferenceKind, PreferenceSource } from '../preferences/preference.entity';
import type { PreferencePair } from '../evaluation/alignment-metrics';
import { seededRandom } from '../evaluation/bootstrap';

/**
 * The fields of a Preference (preference.entity.ts) that pairs are built from, plus the images of
 * the judged candidates (joined from candidates) that the validation split needs.
 */
export interface PreferenceRecord {
  id: string;
  createdAt: Date | string;
  source: `${PreferenceSource}`;
  kind: `${PreferenceKind}`;
  candidateId: string;
  /** The image of `candidateId`. */
  imageId: string;
  annotatorId: string | null;
  judgeModel: string | null;
  roundIndex: number | null;
  answerIndex: number | null;
  /** PAIRWISE between two candidates: candidate B (A is candidateId). */
  otherCandidateId: string | null;
  /** The image of `otherCandidateId`, when there is one. */
  otherImageId?: string | null;
  choice: `${PairwiseChoice}` | null;
  rating: number | null;
  accepted: boolean | null;
}

/**
 * What a pair compares: one answer of a round (answerIndex 0 = A, 1 = B), or a whole candidate
 * (roundIndex null, answerIndex null) or a candidate's round (answerIndex null) when two
 * candidates were compared.
 */
export interface PairItem {
  candidateId: string;
  roundIndex: number | null;
  answerIndex: number | null;
}

export interface TrainingPair {
  preferred: PairItem;
  rejected: PairItem;
  source: `${PreferenceSource}`;
  kind: `${PreferenceKind}`;
  /** The preferences behind the pair: one for a pairwise choice, the two judged answers' otherwise (preferred first). */
  preferenceIds: string[];
  /** Who judged: `CLINICIAN:<annotator id>` or `MODEL:<judge model>`. */
  author: string;
  /** Clinician pairs weigh `clinicianWeight`, model pairs 1. */
  weight: number;
  /** The question both items answer: `<candidate>/<round>` or `<candidate>~<other candidate>/<round>`. */
  question: string;
  /** Images of the two items, sorted, distinct (one when both are about the same image). */
  imageIds: string[];
}

export interface PairBuildOptions {
  /** Weight w of each clinician pair (the reference sweeps 1, 10, 100, 200, 300, 400). */
  clinicianWeight: number;
}

/** A stable text key for an item, e.g. for score lookups in the alignment metrics. */
export function itemKey(item: PairItem): string {
  return `${item.candidateId}/${item.roundIndex ?? '*'}/${item.answerIndex ?? '*'}`;
}

function authorOf(record: PreferenceRecord): string {
  const author = record.source === 'CLINICIAN' ? record.annotatorId : record.judgeModel;
  if (!author) throw new RangeError(`preference ${record.id}: a ${record.source} preference needs its ${record.source === 'CLINICIAN' ? 'annotatorId' : 'judgeModel'}`);
  return `${record.source}:${author}`;
}

function isLater(a: PreferenceRecord, b: PreferenceRecord): boolean {
  const [ta, tb] = [new Date(a.createdAt).getTime(), new Date(b.createdAt).getTime()];
  return ta > tb || (ta === tb && a.id > b.id);
}

/** Keeps each key's latest record (createdAt, then id): a re-judgement replaces the earlier one. */
function latestBy(records: readonly PreferenceRecord[], keyOf: (record: PreferenceRecord) => string): Map<string, PreferenceRecord> {
  const latest = new Map<string, PreferenceRecord>();
  for (const record of records) {
    const key = keyOf(record);
    const current = latest.get(key);
    if (!current || isLater(record, current)) latest.set(key, record);
  }
  return latest;
}

function sortedImages(...images: (string | null | undefined)[]): string[] {
  return [...new Set(images.filter((image): image is string => !!image))].sort();
}

function weightFor(source: `${PreferenceSource}`, options: PairBuildOptions): number {
  return source === 'CLINICIAN' ? options.clinicianWeight : 1;
}

/**
 * PAIRWISE choices, one pair per author and compared thing (their latest choice): A over B, or B
 * over A; TIE gives no pair. Without otherCandidateId, A and B are answers 0 and 1 of roundIndex
 * (a choice without a round compares nothing and is ignored); with it, A is the candidate and B
 * the other candidate (at roundIndex, or as whole conversations when it is null).
 */
function pairsFromChoices(records: readonly PreferenceRecord[], options: PairBuildOptions): TrainingPair[] {
  const choices = records.filter((r) => r.kind === 'PAIRWISE' && r.choice && (r.otherCandidateId !== null || r.roundIndex !== null));
  const latest = latestBy(choices, (r) => `${authorOf(r)}|${r.candidateId}|${r.otherCandidateId ?? ''}|${r.roundIndex ?? ''}`);
  const pairs: TrainingPair[] = [];
  for (const record of latest.values()) {
    if (record.choice === 'TIE') continue;
    const [a, b] = choiceItems(record);
    const [preferred, rejected] = record.choice === 'A' ? [a, b] : [b, a];
    pairs.push({
      preferred,
      rejected,
      source: record.source,
      kind: 'PAIRWISE',
      preferenceIds: [record.id],
      author: authorOf(record),
      weight: weightFor(record.source, options),
      question: record.otherCandidateId ? `${record.candidateId}~${record.otherCandidateId}/${record.roundIndex ?? '*'}` : `${record.candidateId}/${record.roundIndex}`,
      imageIds: sortedImages(record.imageId, record.otherCandidateId ? record.otherImageId : record.imageId),
    });
  }
  return pairs;
}

function choiceItems(record: PreferenceRecord): [PairItem, PairItem] {
  if (record.otherCandidateId) {
    // Without the other image the split could leak it into training: refuse rather than guess.
    if (!record.otherImageId) throw new RangeError(`preference ${record.id}: a choice between two candidates needs otherImageId`);
    return [
      { candidateId: record.candidateId, roundIndex: record.roundIndex, answerIndex: null },
      { candidateId: record.otherCandidateId, roundIndex: record.roundIndex, answerIndex: null },
    ];
  }
  return [0, 1].map((answerIndex) => ({ candidateId: record.candidateId, roundIndex: record.roundIndex, answerIndex })) as [PairItem, PairItem];
}

/**
 * RATING and ACCEPTANCE judgements of single answers: an author who judged both answers of the
 * same round (same candidate; their latest judgement of each) makes a pair when the two differ:
 * the higher rating, or the accepted answer over the rejected one. Equal ratings, both accepted or
 * both rejected, and an answer judged alone make no pair; judgements of a whole conversation
 * (no round or no answer index) compare nothing here.
 */
function pairsFromAnswerJudgements(records: readonly PreferenceRecord[], kind: 'RATING' | 'ACCEPTANCE', options: PairBuildOptions): TrainingPair[] {
  const judged = records.filter((r) => r.kind === kind && r.roundIndex !== null && (r.answerIndex === 0 || r.answerIndex === 1) && valueOf(r) !== null);
  const latest = latestBy(judged, (r) => `${authorOf(r)}|${r.candidateId}|${r.roundIndex}|${r.answerIndex}`);
  const byQuestion = new Map<string, [PreferenceRecord?, PreferenceRecord?]>();
  for (const record of latest.values()) {
    const key = `${authorOf(record)}|${record.candidateId}|${record.roundIndex}`;
    const answers = byQuestion.get(key) ?? [];
    answers[record.answerIndex!] = record;
    byQuestion.set(key, answers);
  }
  const pairs: TrainingPair[] = [];
  for (const [first, second] of byQuestion.values()) {
    if (!first || !second || valueOf(first) === valueOf(second)) continue;
    const [better, worse] = valueOf(first)! > valueOf(second)! ? [first, second] : [second, first];
    pairs.push({
      preferred: { candidateId: better.candidateId, roundIndex: better.roundIndex, answerIndex: better.answerIndex },
      rejected: { candidateId: worse.candidateId, roundIndex: worse.roundIndex, answerIndex: worse.answerIndex },
      source: better.source,
      kind,
      preferenceIds: [better.id, worse.id],
      author: authorOf(better),
      weight: weightFor(better.source, options),
      question: `${better.candidateId}/${better.roundIndex}`,
      imageIds: sortedImages(better.imageId),
    });
  }
  return pairs;
}

/** The comparable value of an answer judgement: its rating, or 1/0 for accepted/rejected. */
function valueOf(record: PreferenceRecord): number | null {
  if (record.kind === 'RATING') return record.rating;
  return record.accepted === null ? null : Number(record.accepted);
}

function pairSortKey(pair: TrainingPair): string {
  return `${pair.source}|${pair.kind}|${pair.question}|${pair.author}|${itemKey(pair.preferred)}`;
}

/**
 * All training pairs from preference records, from either source: model judges' ratings (and
 * any pairwise or acceptance judgements a model recorded) and clinicians' pairwise choices,
 * acceptances and ratings. Each author's judgement yields its own pair (authors are not merged
 * by majority as the TRL export does: a ranking loss weighs disagreeing pairs against each other).
 * Sorted by source, kind, question and author, so the output does not depend on input order.
 */
export function buildTrainingPairs(records: readonly PreferenceRecord[], options: PairBuildOptions): TrainingPair[] {
  if (!(Number.isFinite(options.clinicianWeight) && options.clinicianWeight > 0)) throw new RangeError(`clinicianWeight must be a positive number, got ${options.clinicianWeight}`);
  const pairs = [
    ...pairsFromChoices(records, options),
    ...pairsFromAnswerJudgements(records, 'RATING', options),
    ...pairsFromAnswerJudgements(records, 'ACCEPTANCE', options),
  ];
  return pairs.sort((a, b) => (pairSortKey(a) < pairSortKey(b) ? -1 : pairSortKey(a) > pairSortKey(b) ? 1 : 0));
}

export interface SplitOptions {
  /** Share of the images with clinician pairs held out for validation; default 0.2. */
  validationFraction?: number;
  /** Seed of the image draw (unsigned 32-bit integer); default 0. */
  seed?: number;
}

export interface PairSplit {
  training: TrainingPair[];
  validation: TrainingPair[];
  /** Images held out, sorted. */
  validationImageIds: string[];
  /** Model pairs left out of training because they involve a held-out image. */
  droppedModelPairs: number;
  /** Clinician pairs that involve a held-out and a training image: in neither set. */
  droppedClinicianPairs: number;
}

/**
 * Holds out clinician pairs by image. Of the images that clinician pairs involve (sorted, then
 * shuffled with the seed), the first round(fraction × count) are held out. Validation: the
 * clinician pairs whose images are all held out. Training: every pair, clinician or model, that
 * involves no held-out image. So no held-out image appears in any training pair: model pairs on
 * those images are dropped from training too (they would teach the selector the very answers it
 * is evaluated on), and so is a clinician pair straddling a held-out and a kept image.
 */
export function splitPairsByImage(pairs: readonly TrainingPair[], options: SplitOptions = {}): PairSplit {
  const fraction = options.validationFraction ?? 0.2;
  if (!(fraction >= 0 && fraction <= 1)) throw new RangeError(`validationFraction must lie in [0, 1], got ${fraction}`);
  const heldOut = new Set(drawValidationImages(pairs, fraction, options.seed ?? 0));
  const split: PairSplit = { training: [], validation: [], validationImageIds: [...heldOut].sort(), droppedModelPairs: 0, droppedClinicianPairs: 0 };
  for (const pair of pairs) {
    const held = pair.imageIds.filter((image) => heldOut.has(image)).length;
    if (held === 0) split.training.push(pair);
    else if (pair.source === 'MODEL') split.droppedModelPairs++;
    else if (held === pair.imageIds.length) split.validation.push(pair);
    else split.droppedClinicianPairs++;
  }
  return split;
}

function drawValidationImages(pairs: readonly TrainingPair[], fraction: number, seed: number): string[] {
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new RangeError(`seed must be an unsigned 32-bit integer, got ${seed}`);
  const images = [...new Set(pairs.filter((pair) => pair.source === 'CLINICIAN').flatMap((pair) => pair.imageIds))].sort();
  const random = seededRandom(seed);
  for (let i = images.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [images[i], images[j]] = [images[j], images[i]];
  }
  return images.slice(0, Math.round(fraction * images.length));
}

/**
 * Validation pairs in the alignment metrics' shape: items by itemKey, grouped by question,
 * clustered by image (so the bootstrap resamples images). Weights are left at 1: every clinician
 * pair counts the same in evaluation.
 */
export function toAlignmentPairs(pairs: readonly TrainingPair[]): PreferencePair[] {
  return pairs.map((pair) => ({
    preferred: itemKey(pair.preferred),
    rejected: itemKey(pair.rejected),
    group: pair.question,
    cluster: pair.imageIds.join('+'),
  }));
}
