/**
 * What a rating run's items are called and how they end, shared by the run (which writes them) and
 * re-parsing (which reads them back): one definition, so the two can never drift apart.
 */

/** How a rating item ended, as counted in the run's countsByStatus. */
export enum RatingOutcome {
  RATED = 'RATED',
  UNPARSEABLE = 'UNPARSEABLE',
  REFUSED = 'REFUSED',
  FAILED = 'FAILED',
}

export interface RatingItemKey {
  candidateId: string;
  roundIndex: number;
  answerIndex: number;
}

/** One item per answer of a round of a candidate: `candidate:<id>:round:<n>:answer:<n>`. */
export const ratingItemKey = (i: RatingItemKey) => `candidate:${i.candidateId}:round:${i.roundIndex}:answer:${i.answerIndex}`;

const ITEM_KEY = /^candidate:([0-9a-f-]{36}):round:(\d+):answer:(\d+)$/;

export function parseRatingItemKey(key: string): RatingItemKey | null {
  const match = ITEM_KEY.exec(key);
  return match ? { candidateId: match[1], roundIndex: Number(match[2]), answerIndex: Number(match[3]) } : null;
}

/** The reason an unparseable reply is stored with (a refusal also keeps its text, and is never re-parsed). */
export const UNPARSEABLE_REASON_PREFIX = 'Unparseable rating:';
