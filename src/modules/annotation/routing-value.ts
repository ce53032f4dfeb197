import type { EntityManager } from 'typeorm';
import { latestSelectionCut } from '../datasets/datasets.queries';
import { judgeRatingMeans } from '../preferences/preferences.queries';
import { scoreValues } from '../scoring/scoring.queries';
import { activeSelectorId } from '../selectors/selectors.queries';
import { annotationValueOf } from './annotation-value';

/**
 * Routing VALUE's priority of each candidate (issue 12): high where the active selector and the
 * model judge disagree most and where the candidate sits near the cut of the project's latest
 * dataset rule, alternating with a random pick. The formula is annotationValueOf (annotation-value.ts), shared with
 * `npm run bench:routing`; this reads its inputs in at most five statements on the caller's manager (the
 * campaign's creating transaction), whatever the number of candidates:
 * - the active selector's scores (none active: no disagreement signal);
 * - the judge's mean rating per candidate, over its rated answers;
 * - the latest dataset's cut and its selector's scores of the candidates (no dataset: no threshold signal).
 * Every candidate id gets its priority in [0, 1] (the value order interleaved with a pseudo-random
 * one; see annotation-value.ts for why); 0 when neither signal exists,
 * so VALUE falls back to the campaign's tie order.
 */
export async function annotationValues(manager: EntityManager, projectId: string, candidateIds: string[]): Promise<Map<string, number>> {
  if (candidateIds.length === 0) return new Map();
  // One after the other: in a transaction they share one connection anyway.
  const selectorId = await activeSelectorId(manager, projectId);
  const judge = await judgeRatingMeans(manager, projectId, candidateIds);
  const cut = await latestSelectionCut(manager, projectId);
  const selectorScores = selectorId ? await scoreValues(manager, projectId, selectorId, candidateIds) : new Map<string, number>();
  const cutScores = !cut?.selectorModelId ? null : cut.selectorModelId === selectorId ? selectorScores : await scoreValues(manager, projectId, cut.selectorModelId, candidateIds);
  const values = annotationValueOf(candidateIds, {
    selectorScores,
    judgeRatings: judge,
    threshold: cut && cutScores ? { scores: cutScores, value: cut.score } : null,
  });
  return new Map([...values].map(([id, v]) => [id, v.priority]));
}
