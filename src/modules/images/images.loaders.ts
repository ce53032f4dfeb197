import DataLoader from 'dataloader';
import { RequestContext } from '../projects/request-context';
import { byKeys } from '../../platform/loaders';
import { Image } from './image.entity';
import { ImagesService } from './images.service';

/** Images by id for this request: every nested `image` field of a page costs one query together. */
export function imageByIdLoader(ctx: RequestContext, images: ImagesService): DataLoader<string, Image | null> {
  return ctx.loader('images.byId', () => new DataLoader(async (ids: readonly string[]) => byKeys(ids, await images.findByIds(ctx, ids), (i) => i.id)));
}
