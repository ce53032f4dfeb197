import { EntityManager, EntityTarget, ObjectLiteral } from 'typeorm';

/**
 * Rows versioned by name within a project (datasets, selector models): locks the name for the rest
 * of the transaction, so two writers of the same name cannot both take a version, and returns the
 * next version number (1 for a new name). The entity needs `projectId`, `name` and `version`.
 */
export async function lockNextVersion(em: EntityManager, entity: EntityTarget<ObjectLiteral>, projectId: string, name: string): Promise<number> {
  const repo = em.getRepository(entity);
  await em.query(`SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, [`${repo.metadata.tableName}:${projectId}:${name}`]);
  const row = await repo
    .createQueryBuilder('v')
    .select('coalesce(max(v.version), 0) + 1', 'next')
    .where('v.projectId = :projectId AND v.name = :name', { projectId, name })
    .getRawOne<{ next: number | string }>();
  return Number(row?.next ?? 1);
}
