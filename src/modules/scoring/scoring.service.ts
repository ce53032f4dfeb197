import { DataSource, In } from 'typeorm';
import { RequestContext } from '../projects/request-context';
import { childPages, countChildren, PageArgs } from '../../platform/pagination';
import { Score } from './score.entity';

export class ScoringService {
  constructor(private readonly ds: DataSource) {}

  async findById(ctx: RequestContext, id: string): Promise<Score | null> {
    return this.ds.getRepository(Score).findOneBy({ id, projectId: ctx.projectId });
  }

  /** A page of scores for each candidate, in one statement. */
  async pagesByCandidate(ctx: RequestContext, candidateIds: readonly string[], page: PageArgs): Promise<Score[]> {
    return childPages(this.ds.getRepository(Score), { table: 'scores', parentColumn: 'candidate_id', projectId: ctx.projectId, parentIds: candidateIds, page });
  }

  async countsByCandidate(ctx: RequestContext, candidateIds: readonly string[]): Promise<number[]> {
    return countChildren(this.ds, { table: 'scores', parentColumn: 'candidate_id', projectId: ctx.projectId, parentIds: candidateIds });
  }

  /** Scores of many candidates under one selector model. */
  async forCandidates(ctx: RequestContext, selectorModelId: string, candidateIds: readonly string[]): Promise<Score[]> {
    if (candidateIds.length === 0) return [];
    return this.ds.getRepository(Score).findBy({ projectId: ctx.projectId, selectorModelId, candidateId: In([...candidateIds]) });
  }
}
