import { DataSource } from 'typeorm';
import { RequestContext } from '../projects/request-context';
import { applyKeyset, ConnectionShape, PageArgs, SortDirection, toConnection } from '../../platform/pagination';
import { Dataset } from './dataset.entity';
import { DatasetItem } from './dataset-item.entity';

/** Frozen datasets are read here; creation and export come with the selection issue. */
export class DatasetsService {
  constructor(private readonly ds: DataSource) {}

  async list(ctx: RequestContext, page: PageArgs): Promise<ConnectionShape<Dataset>> {
    const base = () => this.ds.getRepository(Dataset).createQueryBuilder('d').where('d.projectId = :p', { p: ctx.projectId });
    const rows = await applyKeyset(base(), { sortExpr: 'd.createdAt', idExpr: 'd.id', direction: SortDirection.DESC }, page).getMany();
    return toConnection(rows, page, (d) => ({ value: d.createdAt, id: d.id }), () => base().getCount());
  }

  /** Items in rank order; the cursor is the rank, so pages stay stable (a dataset never changes). */
  async items(ctx: RequestContext, datasetId: string, page: PageArgs): Promise<ConnectionShape<DatasetItem>> {
    const base = () =>
      this.ds.getRepository(DatasetItem).createQueryBuilder('i').where('i.projectId = :p AND i.datasetId = :d', { p: ctx.projectId, d: datasetId });
    const rows = await applyKeyset(base(), { sortExpr: 'i.rank', idExpr: 'i.id', direction: SortDirection.ASC, kind: 'number' }, page).getMany();
    return toConnection(rows, page, (i) => ({ value: i.rank, id: i.id }), () => base().getCount());
  }

  async findById(ctx: RequestContext, id: string): Promise<Dataset | null> {
    return this.ds.getRepository(Dataset).findOneBy({ id, projectId: ctx.projectId });
  }

  async findItemById(ctx: RequestContext, id: string): Promise<DatasetItem | null> {
    return this.ds.getRepository(DatasetItem).findOneBy({ id, projectId: ctx.projectId });
  }
}
