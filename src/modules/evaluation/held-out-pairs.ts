/**
 * What an evaluation measures on (issue 11): the held-out clinician pairs, and the model judge's
 * scores of the items they compare. Pure functions over preference records, so the hand-computed
 * tests and the run agree on exactly which pairs count.
 */
import { buildTrainingPairs, itemKey, PairItem, PreferenceRecord, TrainingPair } from '../training/preference-pairs';

/**
 * The clinician pairs (pairwise choices, accepted vs rejected, rating differences; each clinician's
 * latest judgement, as training builds them) whose images are all in `imageIds`; every clinician
 * pair when `imageIds` is null. Weight 1 each: in evaluation every clinician pair counts the same.
 */
export function heldOutClinicianPairs(records: readonly PreferenceRecord[], imageIds: ReadonlySet<string> | null): TrainingPair[] {
  const clinician = records.filter((r) => r.source === 'CLINICIAN');
  return buildTrainingPairs(clinician, { clinicianWeight: 1 }).filter((pair) => !imageIds || pair.imageIds.every((image) => imageIds.has(image)));
}

/** The distinct items the pairs compare, in a stable order (by item key). */
export function pairItems(pairs: readonly TrainingPair[]): PairItem[] {
  const items = new Map<string, PairItem>();
  for (const pair of pairs) for (const item of [pair.preferred, pair.rejected]) items.set(itemKey(item), item);
  return [...items.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, item]) => item);
}

/** The judge model with the most ratings among the records (ties: the first by name); null when none rated. */
export function busiestJudge(records: readonly PreferenceRecord[]): string | null {
  const counts = new Map<string, number>();
  for (const r of records) if (r.source === 'MODEL' && r.kind === 'RATING' && r.judgeModel) counts.set(r.judgeModel, (counts.get(r.judgeModel) ?? 0) + 1);
  let best: string | null = null;
  for (const [model, count] of [...counts].sort(([a], [b]) => (a < b ? -1 : 1))) if (best === null || count > counts.get(best)!) best = model;
  return best;
}

/**
 * The judge's score of each item it can score, by item key: one answer → the judge's latest 0-10
 * rating of it; a round (no answer index) → the mean of its rated answers; a whole candidate → the
 * mean over its rated answers. Items it never rated get no score (the caller leaves their pairs out).
 */
export function judgeItemScores(records: readonly PreferenceRecord[], judgeModel: string, items: readonly PairItem[]): Map<string, number> {
  const latest = new Map<string, PreferenceRecord>();
  for (const r of records) {
    if (r.source !== 'MODEL' || r.kind !== 'RATING' || r.judgeModel !== judgeModel || r.rating === null || r.roundIndex === null || r.answerIndex === null) continue;
    const key = `${r.candidateId}/${r.roundIndex}/${r.answerIndex}`;
    const current = latest.get(key);
    if (!current || new Date(r.createdAt).getTime() > new Date(current.createdAt).getTime() || (new Date(r.createdAt).getTime() === new Date(current.createdAt).getTime() && r.id > current.id)) latest.set(key, r);
  }
  const scores = new Map<string, number>();
  const byPrefix = new Map<string, number[]>();
  for (const [key, r] of latest) {
    for (const prefix of [`${r.candidateId}/${r.roundIndex}/`, `${r.candidateId}/`]) {
      const list = byPrefix.get(prefix) ?? [];
      list.push(r.rating!);
      byPrefix.set(prefix, list);
    }
    scores.set(key, r.rating!);
  }
  const result = new Map<string, number>();
  for (const item of items) {
    const key = itemKey(item);
    if (item.roundIndex !== null && item.answerIndex !== null) {
      const rating = scores.get(key);
      if (rating !== undefined) result.set(key, rating);
      continue;
    }
    const ratings = byPrefix.get(item.roundIndex !== null ? `${item.candidateId}/${item.roundIndex}/` : `${item.candidateId}/`);
    if (ratings?.length) result.set(key, ratings.reduce((a, b) => a + b, 0) / ratings.length);
  }
  return result;
}

/** The pairs whose two items both have a score, and how many were left out. */
export function scoredPairs(pairs: readonly TrainingPair[], scores: ReadonlyMap<string, number>): { pairs: TrainingPair[]; withoutScore: number } {
  const kept = pairs.filter((pair) => scores.has(itemKey(pair.preferred)) && scores.has(itemKey(pair.rejected)));
  return { pairs: kept, withoutScore: pairs.length - kept.length };
}
