import type { EntityManager } from 'typeorm';

/**
 * Set-based reads of scores for other modules, on the caller's manager (inside its transaction
 * when it has one), scoped to a project: routing VALUE and the campaign agreement use them.
 */

/** Each candidate's score under one selector; candidates without a score are absent. One statement. */
export async function scoreValues(manager: Pick<EntityManager, 'query'>, projectId: string, selectorModelId: string, candidateIds: readonly string[]): Promise<Map<string, number>> {
  if (candidateIds.length === 0) return new Map();
  const rows: { candidate_id: string; value: number }[] = await manager.query(
    `SELECT candidate_id, value FROM scores WHERE project_id = $1 AND selector_model_id = $2 AND candidate_id = ANY($3::uuid[])`,
    [projectId, selectorModelId, candidateIds],
  );
  return new Map(rows.map((r) => [r.candidate_id, Number(r.value)]));
}
