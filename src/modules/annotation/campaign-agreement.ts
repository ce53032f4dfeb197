/**
 * Agreement of a campaign's clinicians (issue 12), computed from their judgements: the latest
 * CLINICIAN preferences of the campaign (submitAnnotation replaces a clinician's preferences for an
 * item on edit, so each row here is what counts). Pure: the service reads the rows, this turns them
 * into figures with agreement.ts.
 *
 * Units, one value per clinician per unit:
 * - ACCEPTANCE: one answer of one round (candidate, round, answer); value ACCEPTED / REJECTED, and
 *   1 / 0 where a level needs numbers.
 * - PAIRWISE: one comparison (candidate, other candidate or none, round); value A / TIE / B, and on
 *   the ordered scale B = 0 < TIE = 1 < A = 2 ("how much better A is") for ordinal and interval.
 * - RATING: one answer of one round; the 0-10 rating. Cohen's linear and quadratic weights use the
 *   whole 0-10 scale when every rating is an integer in it (a 2 against an 8 is a bigger disagreement
 *   than a 2 against a 3 even when nobody used 4 to 7), else the ratings' distinct values.
 * Fleiss' kappa needs the same number of raters per unit: it is computed over the units with the
 * most common count of raters (≥ 2; normally the campaign's overlap) and says how many those are.
 */
import {
  cohenKappa,
  CohenKappaResult,
  categoryCounts,
  fleissKappa,
  FleissKappaResult,
  krippendorffAlpha,
  KrippendorffAlphaResult,
  RatingValue,
} from './agreement';

export type JudgementKind = 'ACCEPTANCE' | 'PAIRWISE' | 'RATING';

/** One clinician judgement as stored (a preferences row). */
export interface Judgement {
  annotatorId: string;
  kind: JudgementKind;
  candidateId: string;
  otherCandidateId: string | null;
  roundIndex: number | null;
  answerIndex: number | null;
  accepted: boolean | null;
  choice: 'A' | 'B' | 'TIE' | null;
  rating: number | null;
}

export interface PairAgreement {
  annotatorA: string;
  annotatorB: string;
  /** Units both judged. */
  nItems: number;
  kappa: number | null;
  /** RATING only. */
  kappaLinear: number | null;
  kappaQuadratic: number | null;
}

export interface AnnotatorAgreement {
  annotatorId: string;
  /** Units this clinician judged. */
  nItems: number;
  /** Mean of their pairwise Cohen's kappas (unweighted; quadratic for RATING) over the defined ones. */
  meanKappaVsOthers: number | null;
  /** Other clinicians with a defined kappa against them. */
  nOthers: number;
  /** Cohen's kappa (unweighted; quadratic for RATING) of this clinician against the majority of the others on each unit. */
  kappaVsMajority: number | null;
  /** Units with at least one other judgement and a clear majority of the others (no tie for the most common value). */
  nItemsVsMajority: number;
}

export interface CampaignAgreement {
  kind: JudgementKind | null;
  /** Units judged by anyone. */
  nUnits: number;
  /** Units judged by two clinicians or more. */
  nUnitsShared: number;
  nAnnotators: number;
  pairs: PairAgreement[];
  annotators: AnnotatorAgreement[];
  fleiss: FleissKappaResult;
  alphaNominal: KrippendorffAlphaResult;
  alphaOrdinal: KrippendorffAlphaResult;
  alphaInterval: KrippendorffAlphaResult;
}

/** The unit a judgement is about; the same key for every clinician who judged the same thing. */
export function unitKey(j: Pick<Judgement, 'kind' | 'candidateId' | 'otherCandidateId' | 'roundIndex' | 'answerIndex'>): string {
  if (j.kind === 'PAIRWISE') return `${j.candidateId}:${j.otherCandidateId ?? '-'}:${j.roundIndex ?? '-'}`;
  return `${j.candidateId}:${j.roundIndex ?? '-'}:${j.answerIndex ?? '-'}`;
}

/** The nominal label of a judgement. */
function labelOf(j: Judgement): RatingValue | null {
  if (j.kind === 'ACCEPTANCE') return j.accepted === null ? null : j.accepted ? 'ACCEPTED' : 'REJECTED';
  if (j.kind === 'PAIRWISE') return j.choice;
  return j.rating;
}

/** The value on the ordered scale (ordinal/interval alpha, weighted kappa). */
function numberOf(j: Judgement): number | null {
  if (j.kind === 'ACCEPTANCE') return j.accepted === null ? null : j.accepted ? 1 : 0;
  if (j.kind === 'PAIRWISE') return j.choice === null ? null : j.choice === 'A' ? 2 : j.choice === 'TIE' ? 1 : 0;
  return j.rating;
}

const RATING_SCALE: number[] = Array.from({ length: 11 }, (_, i) => i);

/** The most common value, or null when two values tie for it. */
function majority(values: readonly RatingValue[]): RatingValue | null {
  const counts = new Map<RatingValue, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  let best: RatingValue | null = null;
  let bestCount = 0;
  let tied = false;
  for (const [v, c] of counts) {
    if (c > bestCount) [best, bestCount, tied] = [v, c, false];
    else if (c === bestCount) tied = true;
  }
  return tied ? null : best;
}

/**
 * Agreement of a campaign. `judgements` are of one task kind (a campaign has one); a clinician's
 * second row for the same unit (should not happen: edits replace) overrides the first.
 */
export function campaignAgreement(judgements: readonly Judgement[]): CampaignAgreement {
  const kind = judgements[0]?.kind ?? null;
  const annotators = [...new Set(judgements.map((j) => j.annotatorId))].sort();
  const coder = new Map(annotators.map((a, i) => [a, i]));
  const unitIndex = new Map<string, number>();
  // byCoder[c][u]: coder c's judgement of unit u, or undefined.
  const byCoder: (Judgement | undefined)[][] = annotators.map(() => []);
  for (const j of judgements) {
    const key = unitKey(j);
    let u = unitIndex.get(key);
    if (u === undefined) unitIndex.set(key, (u = unitIndex.size));
    byCoder[coder.get(j.annotatorId)!][u] = j;
  }
  const nUnits = unitIndex.size;
  const labels = byCoder.map((row) => Array.from({ length: nUnits }, (_, u) => (row[u] ? labelOf(row[u]!) : null)));
  const numbers = byCoder.map((row) => Array.from({ length: nUnits }, (_, u) => (row[u] ? numberOf(row[u]!) : null)));
  const isRating = kind === 'RATING';
  const integerScale = isRating && judgements.every((j) => j.rating !== null && Number.isInteger(j.rating) && j.rating >= 0 && j.rating <= 10);
  const weightedCategories = integerScale ? RATING_SCALE : undefined;

  const pairs: PairAgreement[] = [];
  for (let a = 0; a < annotators.length; a++) {
    for (let b = a + 1; b < annotators.length; b++) {
      const plain = cohenKappa(labels[a], labels[b]);
      const weighted = (weights: 'linear' | 'quadratic'): CohenKappaResult | null => (isRating ? cohenKappa(numbers[a], numbers[b], { weights, categories: weightedCategories }) : null);
      pairs.push({
        annotatorA: annotators[a],
        annotatorB: annotators[b],
        nItems: plain.nItems,
        kappa: plain.nItems ? plain.value : null,
        kappaLinear: weighted('linear')?.value ?? null,
        kappaQuadratic: weighted('quadratic')?.value ?? null,
      });
    }
  }

  const perAnnotator: AnnotatorAgreement[] = annotators.map((annotatorId, c) => {
    const mine = pairs.filter((p) => (p.annotatorA === annotatorId || p.annotatorB === annotatorId) && p.nItems > 0);
    const figure = (p: PairAgreement) => (isRating ? p.kappaQuadratic : p.kappa);
    const defined = mine.map(figure).filter((k): k is number => k !== null);
    const own: (RatingValue | null)[] = [];
    const others: (RatingValue | null)[] = [];
    for (let u = 0; u < nUnits; u++) {
      const value = isRating ? numbers[c][u] : labels[c][u];
      if (value === null) continue;
      const rest = (isRating ? numbers : labels).filter((_, o) => o !== c).map((row) => row[u]).filter((v): v is RatingValue => v !== null);
      if (!rest.length) continue;
      own.push(value);
      // RATING: the others' median, rounded, is their "majority" on a 0-10 scale; categories: the mode.
      others.push(isRating ? Math.round(median(rest as number[])) : majority(rest));
    }
    const vsMajority = cohenKappa(own, others, isRating ? { weights: 'quadratic', categories: integerScale ? RATING_SCALE : undefined } : {});
    return {
      annotatorId,
      nItems: labels[c].filter((v) => v !== null).length,
      meanKappaVsOthers: defined.length ? defined.reduce((s, k) => s + k, 0) / defined.length : null,
      nOthers: defined.length,
      kappaVsMajority: vsMajority.nItems ? vsMajority.value : null,
      nItemsVsMajority: vsMajority.nItems,
    };
  });

  // Fleiss: the units with the most common number (≥ 2) of raters.
  const ratersPerUnit = Array.from({ length: nUnits }, (_, u) => labels.map((row) => row[u]).filter((v): v is RatingValue => v !== null));
  const countFrequency = new Map<number, number>();
  for (const values of ratersPerUnit) if (values.length >= 2) countFrequency.set(values.length, (countFrequency.get(values.length) ?? 0) + 1);
  const modal = [...countFrequency].sort((x, y) => y[1] - x[1] || y[0] - x[0])[0]?.[0];
  const fleissUnits = modal === undefined ? [] : ratersPerUnit.filter((values) => values.length === modal);
  const fleissCategories = isRating && integerScale ? RATING_SCALE : undefined;
  const fleiss = fleissKappa(fleissUnits.length ? categoryCounts(fleissUnits, fleissCategories).counts : []);

  const alpha = (level: 'nominal' | 'ordinal' | 'interval') => krippendorffAlpha(level === 'nominal' ? labels : numbers, level);
  return {
    kind,
    nUnits,
    nUnitsShared: ratersPerUnit.filter((values) => values.length >= 2).length,
    nAnnotators: annotators.length,
    pairs,
    annotators: perAnnotator,
    fleiss,
    alphaNominal: alpha('nominal'),
    alphaOrdinal: alpha('ordinal'),
    alphaInterval: alpha('interval'),
  };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/**
 * What a clinician pair compares: one answer (`<candidate>:<round>:<answer>`) or, for a pairwise
 * judgement between two candidates, a whole candidate (`<candidate>`). The judge and the selector
 * are scored on the same keys.
 */
export interface JudgedItemKey {
  key: string;
  candidateId: string;
  roundIndex: number | null;
  answerIndex: number | null;
}

export function answerKey(candidateId: string, roundIndex: number | null, answerIndex: number | null): JudgedItemKey {
  if (roundIndex === null && answerIndex === null) return { key: candidateId, candidateId, roundIndex: null, answerIndex: null };
  return { key: `${candidateId}:${roundIndex ?? '-'}:${answerIndex ?? '-'}`, candidateId, roundIndex, answerIndex };
}

export interface ClinicianPair {
  preferred: JudgedItemKey;
  rejected: JudgedItemKey;
  annotatorId: string;
  /** The question both answers belong to, or the candidate pair. */
  group: string;
}

/**
 * The orderings clinicians expressed, one pair per clinician per comparison:
 * ACCEPTANCE: an accepted and a rejected answer of the same round (the paper's pairs);
 * RATING: two answers of a round rated differently, the higher preferred;
 * PAIRWISE: A or B between the two answers of a round (answer 0 is A), or between two candidates;
 * a TIE, two accepted, two rejected or equal ratings express no order and give no pair.
 */
export function clinicianPairs(judgements: readonly Judgement[]): ClinicianPair[] {
  const pairs: ClinicianPair[] = [];
  const rounds = new Map<string, Judgement[]>();
  for (const j of judgements) {
    if (j.kind === 'PAIRWISE') {
      if (j.choice === null || j.choice === 'TIE') continue;
      const [a, b] = j.otherCandidateId
        ? [answerKey(j.candidateId, j.roundIndex, null), answerKey(j.otherCandidateId, j.roundIndex, null)]
        : [answerKey(j.candidateId, j.roundIndex, 0), answerKey(j.candidateId, j.roundIndex, 1)];
      const group = j.otherCandidateId ? `${j.candidateId}|${j.otherCandidateId}:${j.roundIndex ?? '-'}` : `${j.candidateId}:${j.roundIndex ?? '-'}`;
      pairs.push(j.choice === 'A' ? { preferred: a, rejected: b, annotatorId: j.annotatorId, group } : { preferred: b, rejected: a, annotatorId: j.annotatorId, group });
      continue;
    }
    const key = `${j.annotatorId}|${j.candidateId}:${j.roundIndex ?? '-'}`;
    rounds.set(key, [...(rounds.get(key) ?? []), j]);
  }
  for (const answers of rounds.values()) {
    for (let x = 0; x < answers.length; x++) {
      for (let y = x + 1; y < answers.length; y++) {
        const [p, q] = [answers[x], answers[y]];
        const pv = numberOf(p);
        const qv = numberOf(q);
        if (pv === null || qv === null || pv === qv) continue;
        const [better, worse] = pv > qv ? [p, q] : [q, p];
        pairs.push({
          preferred: answerKey(better.candidateId, better.roundIndex, better.answerIndex),
          rejected: answerKey(worse.candidateId, worse.roundIndex, worse.answerIndex),
          annotatorId: p.annotatorId,
          group: `${p.candidateId}:${p.roundIndex ?? '-'}`,
        });
      }
    }
  }
  return pairs;
}
