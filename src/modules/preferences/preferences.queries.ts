import type { EntityManager } from 'typeorm';

/**
 * Set-based reads of preferences for other modules (annotation: campaign agreement and routing
 * VALUE), on the caller's manager and scoped to a project, so they never name this module's table.
 */

type Queryable = Pick<EntityManager, 'query'>;

/** A campaign's clinician judgement as the agreement needs it. */
export interface CampaignJudgementRow {
  annotatorId: string;
  kind: 'ACCEPTANCE' | 'PAIRWISE' | 'RATING';
  candidateId: string;
  otherCandidateId: string | null;
  roundIndex: number | null;
  answerIndex: number | null;
  accepted: boolean | null;
  choice: 'A' | 'B' | 'TIE' | null;
  rating: number | null;
}

/**
 * Every CLINICIAN preference of these campaigns, by campaign, in one statement (a page of
 * campaigns asking for their agreement is one query). Editing a submission replaces the
 * clinician's preferences for the item, so these are the latest judgements and nothing else.
 */
export async function campaignJudgements(manager: Queryable, projectId: string, campaignIds: readonly string[]): Promise<Map<string, CampaignJudgementRow[]>> {
  const byCampaign = new Map<string, CampaignJudgementRow[]>(campaignIds.map((id) => [id, []]));
  if (campaignIds.length === 0) return byCampaign;
  const rows: Record<string, unknown>[] = await manager.query(
    `SELECT campaign_id, annotator_id, kind, candidate_id, other_candidate_id, round_index, answer_index, accepted, choice, rating
       FROM preferences
      WHERE project_id = $1 AND campaign_id = ANY($2::uuid[]) AND source = 'CLINICIAN'
      ORDER BY created_at, id`,
    [projectId, campaignIds],
  );
  for (const r of rows) {
    byCampaign.get(r.campaign_id as string)?.push({
      annotatorId: r.annotator_id as string,
      kind: r.kind as CampaignJudgementRow['kind'],
      candidateId: r.candidate_id as string,
      otherCandidateId: (r.other_candidate_id as string | null) ?? null,
      roundIndex: (r.round_index as number | null) ?? null,
      answerIndex: (r.answer_index as number | null) ?? null,
      accepted: (r.accepted as boolean | null) ?? null,
      choice: (r.choice as CampaignJudgementRow['choice']) ?? null,
      rating: r.rating === null || r.rating === undefined ? null : Number(r.rating),
    });
  }
  return byCampaign;
}

/** The model judge's rating of one answer (mean over the judge's rating runs of it). */
export interface JudgeRatingRow {
  candidateId: string;
  roundIndex: number | null;
  answerIndex: number | null;
  rating: number;
}

/**
 * The model judge's ratings of these candidates' answers, in one statement. One judge: the one
 * that rated any of these candidates most recently (a project that switched judge models compares
 * against the current one, not a blend); its repeated ratings of an answer are averaged.
 */
export async function judgeRatings(manager: Queryable, projectId: string, candidateIds: readonly string[]): Promise<{ judgeModel: string | null; ratings: JudgeRatingRow[] }> {
  if (candidateIds.length === 0) return { judgeModel: null, ratings: [] };
  const rows: { judge_model: string; candidate_id: string; round_index: number | null; answer_index: number | null; rating: number }[] = await manager.query(
    `WITH judge AS (
       SELECT judge_model FROM preferences
        WHERE project_id = $1 AND source = 'MODEL' AND kind = 'RATING' AND candidate_id = ANY($2::uuid[])
        ORDER BY created_at DESC, id DESC LIMIT 1)
     SELECT p.judge_model, p.candidate_id, p.round_index, p.answer_index, avg(p.rating) AS rating
       FROM preferences p JOIN judge j ON p.judge_model = j.judge_model
      WHERE p.project_id = $1 AND p.source = 'MODEL' AND p.kind = 'RATING' AND p.candidate_id = ANY($2::uuid[])
      GROUP BY p.judge_model, p.candidate_id, p.round_index, p.answer_index`,
    [projectId, candidateIds],
  );
  return {
    judgeModel: rows[0]?.judge_model ?? null,
    ratings: rows.map((r) => ({ candidateId: r.candidate_id, roundIndex: r.round_index, answerIndex: r.answer_index, rating: Number(r.rating) })),
  };
}

/** The judge's mean rating per candidate over its rated answers (see judgeRatings for which judge). */
export async function judgeRatingMeans(manager: Queryable, projectId: string, candidateIds: readonly string[]): Promise<Map<string, number>> {
  const { ratings } = await judgeRatings(manager, projectId, candidateIds);
  const sums = new Map<string, [number, number]>();
  for (const r of ratings) {
    const s = sums.get(r.candidateId) ?? [0, 0];
    sums.set(r.candidateId, [s[0] + r.rating, s[1] + 1]);
  }
  return new Map([...sums].map(([id, [total, n]]) => [id, total / n]));
}
