import type { EntityManager } from 'typeorm';

/** The project's active selector model id, on the caller's manager; null when none is active. */
export async function activeSelectorId(manager: Pick<EntityManager, 'query'>, projectId: string): Promise<string | null> {
  const rows: { id: string }[] = await manager.query(`SELECT id FROM selector_models WHERE project_id = $1 AND active LIMIT 1`, [projectId]);
  return rows[0]?.id ?? null;
}
