import { DataSource } from 'typeorm';
import { RequestContext } from '../projects/request-context';
import { applyKeyset, ConnectionShape, PageArgs, SortDirection, toConnection } from '../../platform/pagination';
import { Run, RunKind, RunStatus } from './run.entity';

/** Runs are read here; the issues that add generation, rating, scoring and export create them. */
export class RunsService {
  constructor(private readonly ds: DataSource) {}

  async list(ctx: RequestContext, page: PageArgs, filter?: { kinds?: RunKind[] | null; statuses?: RunStatus[] | null } | null): Promise<ConnectionShape<Run>> {
    const base = () => {
      const qb = this.ds.getRepository(Run).createQueryBuilder('r').where('r.projectId = :p', { p: ctx.projectId });
      if (filter?.kinds?.length) qb.andWhere('r.kind IN (:...kinds)', { kinds: filter.kinds });
      if (filter?.statuses?.length) qb.andWhere('r.status IN (:...statuses)', { statuses: filter.statuses });
      return qb;
    };
    const rows = await applyKeyset(base(), { sortExpr: 'r.createdAt', idExpr: 'r.id', direction: SortDirection.DESC }, page).getMany();
    return toConnection(rows, page, (r) => ({ value: r.createdAt, id: r.id }), () => base().getCount());
  }

  async findById(ctx: RequestContext, id: string): Promise<Run | null> {
    return this.ds.getRepository(Run).findOneBy({ id, projectId: ctx.projectId });
  }
}
