import { Router, Request, Response } from 'express';
import type { DataSource } from 'typeorm';
import type { UrlSigner } from '../../platform/signing';
import type { AuthService } from '../projects/auth.service';
import { DomainError, ErrorCode } from '../../platform/errors';
import { isUuid } from '../../platform/ids';
import { RequestContext } from '../projects/request-context';
import { Image } from './image.entity';
import type { ImagesService } from './images.service';
import { ImageVariant } from './images.service';

/** What the route touches: the images, the signer that checks links, API key authentication, and the database for a signed link's image. */
export interface ImageFilesDeps {
  ds: DataSource;
  signer: UrlSigner;
  auth: AuthService;
  images: ImagesService;
}

const VARIANTS = new Set<ImageVariant>(['original', 'thumbnail']);

/**
 * GET /files/images/:imageId/:variant — the bytes of an image. Authorized either by the signed,
 * expiring query string that `Image.url` carries (for <img> tags), or by an API key of the image's
 * project. Anything else answers 404, so ids of other projects are not confirmed.
 */
export function imageFilesRouter(services: ImageFilesDeps): Router {
  const router = Router();
  router.get('/files/images/:imageId/:variant', async (req: Request, res: Response) => {
    const imageId = String(req.params.imageId);
    const variant = String(req.params.variant) as ImageVariant;
    if (!isUuid(imageId) || !VARIANTS.has(variant)) return void res.status(404).json({ error: 'NOT_FOUND' });
    try {
      const image = await authorizedImage(services, req, imageId, variant);
      const file = image && (await services.images.readFile(image, variant));
      if (!file) return void res.status(404).json({ error: 'NOT_FOUND' });
      res.set({
        'Content-Type': file.contentType,
        'Content-Length': String(file.bytes.length),
        'Cache-Control': 'private, max-age=3600, immutable',
        ETag: `"${image.contentHash}-${variant}"`,
        'X-Content-Type-Options': 'nosniff',
      });
      res.end(file.bytes);
    } catch (error) {
      if (error instanceof DomainError) return void res.status(error.httpStatus).json({ error: error.code, message: error.message });
      throw error;
    }
  });
  return router;
}

async function authorizedImage(services: ImageFilesDeps, req: Request, imageId: string, variant: ImageVariant): Promise<Image | null> {
  const { expires, signature } = req.query;
  if (typeof expires === 'string' && typeof signature === 'string') {
    const valid = services.signer.verify(`/files/images/${imageId}/${variant}`, Number(expires), signature);
    if (!valid) throw new DomainError(ErrorCode.FORBIDDEN, 'The link is invalid or has expired');
    return services.ds.getRepository(Image).findOneBy({ id: imageId });
  }
  const ctx: RequestContext = await services.auth.authenticateHeader(req.headers.authorization);
  return services.images.findById(ctx, imageId);
}
