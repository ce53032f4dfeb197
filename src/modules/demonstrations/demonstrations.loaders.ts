import DataLoader from 'dataloader';
import { RequestContext } from '../projects/request-context';
import { byKeys } from '../../platform/loaders';
import { Demonstration } from './demonstration.entity';
import { DemonstrationsService } from './demonstrations.service';

export function demonstrationByIdLoader(ctx: RequestContext, demonstrations: DemonstrationsService): DataLoader<string, Demonstration | null> {
  return ctx.loader('demonstrations.byId', () => new DataLoader(async (ids: readonly string[]) => byKeys(ids, await demonstrations.findByIds(ctx, ids), (d) => d.id)));
}
