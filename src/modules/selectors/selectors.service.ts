import { DataSource, In } from 'typeorm';
import { RequestContext } from '../projects/request-context';
import { applyKeyset, ConnectionShape, PageArgs, SortDirection, toConnection } from '../../platform/pagination';
import { SelectorModel } from './selector-model.entity';

/** The registry of selector models. Registration and validation come with the scoring issue. */
export class SelectorsService {
  constructor(private readonly ds: DataSource) {}

  async list(ctx: RequestContext, page: PageArgs, activeOnly?: boolean | null): Promise<ConnectionShape<SelectorModel>> {
    const base = () => {
      const qb = this.ds.getRepository(SelectorModel).createQueryBuilder('m').where('m.projectId = :p', { p: ctx.projectId });
      return activeOnly ? qb.andWhere('m.active') : qb;
    };
    const rows = await applyKeyset(base(), { sortExpr: 'm.createdAt', idExpr: 'm.id', direction: SortDirection.DESC }, page).getMany();
    return toConnection(rows, page, (m) => ({ value: m.createdAt, id: m.id }), () => base().getCount());
  }

  async findById(ctx: RequestContext, id: string): Promise<SelectorModel | null> {
    return this.ds.getRepository(SelectorModel).findOneBy({ id, projectId: ctx.projectId });
  }

  async findByIds(ctx: RequestContext, ids: readonly string[]): Promise<SelectorModel[]> {
    if (ids.length === 0) return [];
    return this.ds.getRepository(SelectorModel).findBy({ id: In([...ids]), projectId: ctx.projectId });
  }
}
