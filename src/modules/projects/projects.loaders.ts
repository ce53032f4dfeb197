import DataLoader from 'dataloader';
import { byKeys } from '../../platform/loaders';
import { RequestContext } from './request-context';
import { User } from './user.entity';
import { ProjectsService } from './projects.service';

export function userByIdLoader(ctx: RequestContext, projects: ProjectsService): DataLoader<string, User | null> {
  return ctx.loader('users.byId', () => new DataLoader(async (ids: readonly string[]) => byKeys(ids, await projects.usersByIds(ctx, ids), (u) => u.id)));
}
