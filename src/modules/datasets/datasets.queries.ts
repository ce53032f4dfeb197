import type { EntityManager } from 'typeorm';

/**
 * Set-based reads of datasets for other modules that work inside a transaction of their own
 * (routing VALUE computes item priorities while a campaign is created): they take the caller's
 * manager and a project id, and never name another module's table.
 */

export interface SelectionCut {
  datasetId: string;
  /** The selector the rule ranked by; null when the rule's selector was deleted. */
  selectorModelId: string | null;
  /** The score of the last candidate the rule kept: above it (or at it) is in, below is out. */
  score: number;
}

/**
 * The cut of the project's latest dataset (by creation): the score of its last-ranked item, which
 * is where the rule actually drew the line whatever it said (top fraction, top k, minimum score or
 * a union). Null when the project has no dataset or its last item has no score.
 */
export async function latestSelectionCut(manager: Pick<EntityManager, 'query'>, projectId: string): Promise<SelectionCut | null> {
  const rows: { dataset_id: string; selector_model_id: string | null; score: number | null }[] = await manager.query(
    `SELECT d.id AS dataset_id, d.selector_model_id, last.score
       FROM (SELECT id, selector_model_id FROM datasets WHERE project_id = $1 ORDER BY created_at DESC, id DESC LIMIT 1) d
       CROSS JOIN LATERAL (SELECT score FROM dataset_items WHERE dataset_id = d.id ORDER BY rank DESC LIMIT 1) last`,
    [projectId],
  );
  const row = rows[0];
  return row && row.score !== null ? { datasetId: row.dataset_id, selectorModelId: row.selector_model_id, score: Number(row.score) } : null;
}
