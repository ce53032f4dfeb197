import fs from 'node:fs';
import path from 'node:path';
import { Router, Response } from 'express';

/**
 * GET /annotate — the reference annotation page (issue 12): one HTML file, one plain script and one
 * stylesheet, served as they are (no build step, no framework, nothing from a CDN). The page holds no
 * server-side secret and gets no special route: it talks only to the public POST /graphql with the
 * key the clinician pastes, so a frontend team can read it as an example of the API.
 *
 * The Content-Security-Policy allows nothing but this origin: scripts and styles from these files
 * only (no inline code, so an injected caption cannot run), requests to this origin (GraphQL, and the
 * signed image URLs the API hands out), no frames, no forms posted elsewhere, no <base>.
 */
export const ANNOTATE_PAGE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' blob:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const ASSETS: Record<string, string> = {
  'annotate.html': 'text/html; charset=utf-8',
  'annotate.js': 'text/javascript; charset=utf-8',
  'annotate.css': 'text/css; charset=utf-8',
  // Without an icon the browser asks for /favicon.ico and logs the 404 as a page error.
  'favicon.svg': 'image/svg+xml',
};

/**
 * Where the files are: next to this module when running from source (npm start, tests); a compiled
 * build (dist/) does not copy non-TypeScript files, so it reads them from the source tree.
 */
function assetDirectory(): string {
  const candidates = [path.join(__dirname, 'page'), path.resolve(__dirname, '..', '..', '..', '..', 'src', 'modules', 'annotation', 'page')];
  return candidates.find((dir) => fs.existsSync(path.join(dir, 'annotate.html'))) ?? candidates[0];
}

function send(res: Response, file: string, bytes: Buffer): void {
  res.set({
    'Content-Type': ASSETS[file],
    'Content-Security-Policy': ANNOTATE_PAGE_CSP,
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    'X-Frame-Options': 'DENY',
    // Small files that change with deployments: revalidate each time rather than run a stale page against a newer API.
    'Cache-Control': 'no-cache',
  });
  res.end(bytes);
}

export function annotatePageRouter(): Router {
  const dir = assetDirectory();
  // Read once: three small files, and no path from the request ever reaches the file system. A build
  // without them still starts (the page answers 404); the API does not depend on the page.
  const files = new Map(Object.keys(ASSETS).filter((name) => fs.existsSync(path.join(dir, name))).map((name) => [name, fs.readFileSync(path.join(dir, name))]));
  const router = Router();
  router.get(['/annotate', '/annotate/'], (_req, res, next) => {
    const html = files.get('annotate.html');
    if (!html) return next();
    send(res, 'annotate.html', html);
  });
  router.get('/annotate/:file', (req, res, next) => {
    const file = String(req.params.file);
    const bytes = files.get(file);
    if (!bytes || file === 'annotate.html') return next();
    send(res, file, bytes);
  });
  return router;
}
