import { EntityManager } from 'typeorm';

/**
 * The priority of each candidate for VALUE routing (issue 12): highest is handed out first. Called
 * once, inside the transaction that creates the campaign; the result is frozen on the items.
 * This version gives every candidate 0 (VALUE then behaves as ORDERED); the value model replaces it.
 */
export async function annotationValues(_manager: EntityManager, _projectId: string, candidateIds: string[]): Promise<Map<string, number>> {
  return new Map(candidateIds.map((id) => [id, 0]));
}
