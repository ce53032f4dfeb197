import { DataSource, In } from 'typeorm';
import { RequestContext } from '../projects/request-context';
import { childPageSubquery, PageArgs } from '../../platform/pagination';
import { countsByKeys } from '../../platform/loaders';
import { Score } from './score.entity';

export class ScoringService {
  constructor(private readonly ds: DataSource) {}

  async findById(ctx: RequestContext, id: string): Promise<Score | null> {
    return this.ds.getRepository(Score).findOneBy({ id, projectId: ctx.projectId });
  }

  /** A page of scores for each candidate, in one statement. */
  async pagesByCandidate(ctx: RequestContext, candidateIds: readonly string[], page: PageArgs): Promise<Score[]> {
    const { sql, params } = childPageSubquery({ table: 'scores', parentColumn: 'candidate_id', projectId: ctx.projectId, parentIds: candidateIds, page });
    return this.ds.getRepository(Score).createQueryBuilder('s').where(`s.id IN (${sql})`, params).orderBy('s.createdAt', 'DESC').addOrderBy('s.id', 'DESC').getMany();
  }

  async countsByCandidate(ctx: RequestContext, candidateIds: readonly string[]): Promise<number[]> {
    const rows = await this.ds.query(
      `SELECT candidate_id AS key, count(*) AS count FROM scores WHERE project_id = $1 AND candidate_id = ANY($2::uuid[]) GROUP BY candidate_id`,
      [ctx.projectId, [...candidateIds]],
    );
    return countsByKeys(candidateIds, rows);
  }

  /** Scores of many candidates under one selector model. */
  async forCandidates(ctx: RequestContext, selectorModelId: string, candidateIds: readonly string[]): Promise<Score[]> {
    if (candidateIds.length === 0) return [];
    return this.ds.getRepository(Score).findBy({ projectId: ctx.projectId, selectorModelId, candidateId: In([...candidateIds]) });
  }
}
