import { pipeline } from 'node:stream/promises';
import { Router, Request, Response } from 'express';
import type { AppConfig } from '../../platform/config';
import { DomainError, ErrorCode } from '../../platform/errors';
import type { UrlSigner } from '../../platform/signing';
import { fromGlobalId, isUuid, toGlobalId } from '../../platform/ids';
import { logger } from '../../platform/logging';
import type { AuthService } from '../projects/auth.service';
import type { DatasetExportsService } from './dataset-exports.service';
import { DatasetExport } from './dataset-exports.service';
import { ExportFormat, isExportFormat } from './dataset-export.format';

/** Where a dataset's export downloads (relative to the API origin); `datasetId` is the dataset's UUID. */
export function datasetExportPath(datasetId: string, format: ExportFormat): string {
  return `/exports/datasets/${toGlobalId('Dataset', datasetId)}/${format}`;
}

/**
 * The export's path with a signed, expiring query string (the `Image.url` scheme), so that the link
 * alone downloads it: for `pandas.read_json`, `wget` or a training job, which send no header.
 */
export function signedDatasetExportPath(signer: UrlSigner, datasetId: string, format: ExportFormat): { path: string; expiresAt: Date } {
  const path = datasetExportPath(datasetId, format);
  const { query, expiresAt } = signer.signPath(path);
  return { path: `${path}?${query}`, expiresAt };
}

/** The dataset's UUID from a path segment that holds its Relay id (what `Dataset.id` shows) or the UUID itself. */
function datasetUuid(segment: string): string | null {
  if (isUuid(segment)) return segment;
  const parsed = fromGlobalId(segment);
  return parsed?.type === 'Dataset' ? parsed.id : null;
}

/** The client went away or the response was torn down: not a server failure. */
const isDisconnect = (error: unknown) => {
  const e = error as { name?: string; code?: string };
  return e?.name === 'AbortError' || e?.code === 'ERR_STREAM_PREMATURE_CLOSE' || e?.code === 'ECONNRESET';
};

function logEnd(error: unknown, disconnected: boolean, fields: Record<string, unknown>): void {
  if (disconnected && isDisconnect(error)) logger.info('export stopped: client disconnected', fields);
  else logger.error('export failed', { ...fields, error: String((error as Error)?.message ?? error) });
}

/** A link expired: its signature is genuine, so saying so tells the holder nothing new. */
class LinkExpired extends Error {}

/** What the route touches: the exports, the signer that checks links, API key authentication, and its concurrency cap. */
export interface DatasetExportsDeps {
  config: Pick<AppConfig, 'EXPORT_MAX_CONCURRENT'>;
  signer: UrlSigner;
  auth: AuthService;
  datasetExports: DatasetExportsService;
}

/**
 * The export a request may read: by its signed query string (`expires` and `signature`, checked
 * against the canonical path of this dataset and format, so a changed id, format or expiry is
 * refused) or else by an API key of the dataset's project.
 */
async function openAuthorized(services: DatasetExportsDeps, req: Request, datasetId: string | null, format: ExportFormat): Promise<DatasetExport> {
  const { expires, signature } = req.query;
  if (typeof expires === 'string' || typeof signature === 'string') {
    const verdict =
      datasetId && typeof expires === 'string' && typeof signature === 'string' && /^\d+$/.test(expires)
        ? services.signer.check(datasetExportPath(datasetId, format), Number(expires), signature)
        : 'invalid';
    if (verdict === 'expired') throw new LinkExpired();
    if (verdict === 'invalid') throw new DomainError(ErrorCode.FORBIDDEN, 'The link is invalid');
    return services.datasetExports.openSigned(datasetId!, format);
  }
  const ctx = await services.auth.authenticateHeader(req.headers.authorization);
  if (!datasetId) throw new DomainError(ErrorCode.NOT_FOUND, 'Dataset not found');
  return services.datasetExports.open(ctx, datasetId, format);
}

/**
 * GET /exports/datasets/:datasetId/:format — a dataset as `llava.json`, `jsonl`, `trl.jsonl`,
 * `trl-vision.jsonl`, `images.tar`, `card.md` or `card.json`, streamed as it is read (no
 * Content-Length). Authorized by the signed query string `Dataset.exports` gives (no header needed;
 * a tampered one answers 403, an expired one 410 Gone) or by an API key of the dataset's project,
 * any role; an unknown id, another project's, or an unknown format answers 404.
 */
export function datasetExportsRouter(services: DatasetExportsDeps): Router {
  const router = Router();
  // A text export holds a pooled connection for the whole download: cap them, so slow clients cannot starve the API.
  let streaming = 0;
  const maxStreaming = services.config.EXPORT_MAX_CONCURRENT;
  router.get('/exports/datasets/:datasetId/:format', async (req: Request, res: Response) => {
    if (streaming >= maxStreaming) {
      res.set('Retry-After', '5');
      return void res.status(503).json({ error: 'RATE_LIMITED', message: `${maxStreaming} exports are already streaming from this server; retry shortly` });
    }
    streaming++;
    res.once('close', () => streaming--);
    const format = String(req.params.format);
    const datasetId = datasetUuid(String(req.params.datasetId));
    if (!isExportFormat(format)) return void res.status(404).json({ error: 'NOT_FOUND', message: 'Unknown export format' });
    let opened: DatasetExport;
    try {
      opened = await openAuthorized(services, req, datasetId, format);
    } catch (error) {
      if (error instanceof LinkExpired) return void res.status(410).json({ error: 'LINK_EXPIRED', message: 'The link has expired; ask Dataset.exports for a new one' });
      if (error instanceof DomainError) return void res.status(error.httpStatus).json({ error: error.code, message: error.message });
      throw error;
    }
    res.set({
      'Content-Type': opened.contentType,
      'Content-Disposition': `attachment; filename="${opened.fileName}"`,
      'Cache-Control': 'private, no-store',
      'X-Content-Type-Options': 'nosniff',
    });
    if (req.method === 'HEAD') return void res.end();

    // Stops the database read as soon as the client disconnects; after a complete response it does nothing.
    const disconnected = new AbortController();
    res.once('close', () => disconnected.abort());
    const body = opened.body(disconnected.signal);
    // The first chunk is read before the status is sent, so that a failing start still answers 500.
    let first: IteratorResult<Buffer>;
    try {
      first = await body.next();
    } catch (error) {
      logEnd(error, disconnected.signal.aborted, { requestId: res.locals.requestId, datasetId, format });
      if (res.headersSent || disconnected.signal.aborted) return void res.destroy();
      res.removeHeader('Content-Disposition');
      return void res.status(500).json({ error: 'INTERNAL_SERVER_ERROR', message: 'The export could not be read' });
    }
    try {
      await pipeline(
        (async function* () {
          if (!first.done) yield first.value;
          yield* body;
        })(),
        res,
      );
    } catch (error) {
      // Headers are sent: the only signal left to the client is a response cut short, which pipeline did.
      logEnd(error, disconnected.signal.aborted, { requestId: res.locals.requestId, datasetId, format });
    }
  });
  return router;
}
