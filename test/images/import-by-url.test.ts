import crypto from 'node:crypto';
import http from 'node:http';
import { AddressInfo } from 'node:net';
import { startTestApp, createTestProject, TestApp, TestProject } from '../support/test-app';
import { gql, errorCodes, GraphQLResponse } from '../support/graphql-client';
import { readSharedImage } from '../support/shared-data';
import { ImageFetchRun } from '../../src/modules/images/image-fetch.run';
import { RunControl } from '../../src/modules/runs/run-executor';
import { fromGlobalId } from '../../src/platform/ids';

/**
 * Images by URL (issue 13): importRecords records whose `imgs` is an http(s) URL are written without
 * bytes and fetched by an IMAGE_FETCH run in the worker; uploadImage's `url` is fetched at once.
 * Both go through the SSRF-guarded fetcher. A local HTTP server plays the image host; the
 * private-network setting is on for it in one app and off (the default) in the other.
 */

const PNG = readSharedImage('bio_patch.png');
const JPEG = readSharedImage('synpic32933.jpg');
const OTHER_JPEG = readSharedImage('xy_chromosome.jpg');
const MAX_BYTES = 1_000_000;
const sha256 = (bytes: Buffer) => crypto.createHash('sha256').update(bytes).digest('hex');

const IMPORT = `mutation Import($input: ImportRecordsInput!) {
  importRecords(input: $input) {
    summary { imagesCreated imagesUpdated imagesWithBytes demonstrationsCreated }
    recordErrors { index recordId field message code }
    fetchRun { id kind status total done failed }
    userErrors { code field message }
  }
}`;
const UPLOAD = `mutation Upload($input: UploadImageInput!) {
  uploadImage(input: $input) { image { id pairId source fileName contentHash mimeType width height url } userErrors { code field message } }
}`;
const IMAGES = `{ images(first: 50) { edges { node { id pairId source sourceUrl fileName contentHash mimeType url } } } }`;
const RUN = `query($id: ID!) {
  run(id: $id) { id kind status total done failed countsByStatus { status count } failures(first: 50) { edges { node { itemKey reason } } } }
}`;

interface ImageHost {
  base: string;
  hits: string[];
  close(): Promise<void>;
}

/** The image host: real files, a non-image, a fake image, an oversized body, a silent server, redirects, a 404. */
async function startImageHost(): Promise<ImageHost> {
  const hits: string[] = [];
  const hanging = new Set<http.ServerResponse>();
  const server = http.createServer((req, res) => {
    const path = req.url ?? '/';
    hits.push(path);
    const redirect = /^\/redirect\/(\d+)$/.exec(path);
    if (redirect) {
      const left = Number(redirect[1]);
      res.writeHead(302, { location: left > 1 ? `/redirect/${left - 1}` : '/figure.png' }).end();
    } else if (path === '/figure.png') res.writeHead(200, { 'content-type': 'image/png' }).end(PNG);
    else if (path === '/figure.jpg') res.writeHead(200, { 'content-type': 'image/jpeg' }).end(JPEG);
    else if (path === '/octet') res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(OTHER_JPEG);
    else if (path === '/page.html') res.writeHead(200, { 'content-type': 'text/html' }).end('<html>not an image</html>');
    else if (path === '/fake.png') res.writeHead(200, { 'content-type': 'image/png' }).end(Buffer.from('this is not a png at all'));
    else if (path === '/huge.png') {
      // Chunked, with no Content-Length: the fetcher must count and stop on its own.
      res.writeHead(200, { 'content-type': 'image/png' });
      const chunk = Buffer.alloc(64 * 1024, 7);
      let sent = 0;
      const pump = () => {
        while (sent < 4 * MAX_BYTES && !res.destroyed) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    } else if (path === '/slow.png') {
      hanging.add(res); // answers nothing until the host closes
    } else res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}`,
    hits,
    close: () =>
      new Promise<void>((resolve) => {
        for (const res of hanging) res.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const record = (pairId: string, imgs: string, extra: Record<string, unknown> = {}) => ({ pair_id: pairId, pmid: pairId.split('_')[0], fig_caption: `Figure ${pairId}`, imgs, ...extra });

async function imageCount(app: TestApp): Promise<{ images: number; blobs: number }> {
  const [row] = await app.ds.query(`SELECT (SELECT count(*) FROM images)::int AS images, (SELECT count(*) FROM blob_objects)::int AS blobs`);
  return row;
}

async function imagesByPair(app: TestApp, key: string): Promise<Record<string, Record<string, any>>> {
  const list = await gql(app.graphqlUrl, key, IMAGES);
  return Object.fromEntries(list.data!.images.edges.map(({ node }: { node: { pairId: string } }) => [node.pairId, node]));
}

/** The run once it has ended, read over GraphQL as a client would poll it. */
async function endedRun(app: TestApp, key: string, id: string, timeoutMs = 30_000): Promise<Record<string, any>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await gql(app.graphqlUrl, key, RUN, { id });
    const run = res.data?.run;
    if (!run) throw new Error(`run not readable: ${JSON.stringify(res.errors)}`);
    if (['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(run.status)) return run;
    if (Date.now() > deadline) throw new Error(`run still ${run.status}: ${JSON.stringify(run)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A run's failures by the pair id their reason names, each checked to be keyed by its image's id. */
async function failuresByPair(app: TestApp, projectId: string, run: Record<string, any>): Promise<Record<string, string>> {
  const rows: { id: string; pair_id: string }[] = await app.ds.query(`SELECT id, pair_id FROM images WHERE project_id = $1`, [projectId]);
  const pairOfId = new Map(rows.map((r) => [r.id, r.pair_id]));
  const out: Record<string, string> = {};
  for (const { node } of run.failures.edges as { node: { itemKey: string; reason: string } }[]) {
    const pair = pairOfId.get(node.itemKey.replace(/^image:/, ''));
    expect(pair).toBeDefined();
    expect(node.reason).toContain(`pair ${pair}`);
    out[pair!] = node.reason;
  }
  return out;
}

async function download(url: string): Promise<Buffer> {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  return Buffer.from(await res.arrayBuffer());
}

describe('images by URL, private networks allowed (the image host is on 127.0.0.1)', () => {
  let host: ImageHost;
  let app: TestApp;
  let lab: TestProject;
  let other: TestProject;

  beforeAll(async () => {
    host = await startImageHost();
    // No worker yet: the import must return before any byte is fetched.
    app = await startTestApp({
      IMAGE_FETCH_ALLOW_PRIVATE_NETWORKS: 'true',
      IMAGE_FETCH_TIMEOUT_MS: '1500',
      IMAGE_FETCH_MAX_REDIRECTS: '3',
      MAX_UPLOAD_BYTES: String(MAX_BYTES),
    });
    lab = await createTestProject(app, 'urllab');
    other = await createTestProject(app, 'urlother');
  });
  afterAll(async () => {
    await app?.stop();
    await host?.close();
  });

  it('a URL that is wrong without fetching it is a record error, and nothing of the import is written', async () => {
    const before = await imageCount(app);
    const records = [
      record('100_1', `${host.base}/figure.png`),
      record('100_2', 'http://exa mple.org/figure.png'),
      record('100_3', `http://user:secret@127.0.0.1:1/figure.png`),
      { pair_id: '100_4', pmid: '100', image: 'ftp://example.org/figure.png' },
    ];
    const res = await gql(app.graphqlUrl, lab.keys.CURATOR, IMPORT, { input: { records } });
    expect(res.errors).toBeUndefined();
    const out = res.data!.importRecords;
    expect(out).toMatchObject({ summary: null, fetchRun: null });
    expect(out.recordErrors).toEqual([
      expect.objectContaining({ index: 1, field: 'imgs', code: 'INVALID', message: expect.stringMatching(/Not a valid URL/) }),
      expect.objectContaining({ index: 2, field: 'imgs', code: 'INVALID', message: expect.stringMatching(/no credentials/) }),
    ]);
    // Not an http(s) URL: a file name that matched no uploaded file, as before (no fetch, no error).
    expect(host.hits).toEqual([]);
    expect(await imageCount(app)).toEqual(before);
  });

  it('returns at once with an IMAGE_FETCH run; the worker fetches each image, and each failure names its record', async () => {
    const records = [
      record('200_1', `${host.base}/figure.png`, { conversations: [{ from: 'human', value: 'What is shown?' }, { from: 'gpt', value: 'A patch.' }] }),
      record('200_2', `${host.base}/figure.jpg`),
      record('200_3', `${host.base}/page.html`),
      record('200_4', `${host.base}/fake.png`),
      record('200_5', `${host.base}/huge.png`),
      record('200_6', `${host.base}/slow.png`),
      record('200_7', `${host.base}/redirect/4`),
      record('200_8', `${host.base}/missing.png`),
    ];
    const res = await gql(app.graphqlUrl, lab.keys.CURATOR, IMPORT, { input: { records, createDemonstrations: true } });
    expect(res.errors).toBeUndefined();
    const out = res.data!.importRecords;
    expect(out.recordErrors).toEqual([]);
    expect(out.summary).toMatchObject({ imagesCreated: 8, imagesWithBytes: 0, demonstrationsCreated: 1 });
    expect(out.fetchRun).toMatchObject({ kind: 'IMAGE_FETCH', status: 'QUEUED', total: 8, done: 0, failed: 0 });
    // Written without bytes, keeping their URLs; no request reached the host: the worker fetches.
    const pending = await imagesByPair(app, lab.keys.VIEWER);
    expect(pending['200_1']).toMatchObject({ source: 'URL', sourceUrl: `${host.base}/figure.png`, contentHash: null });
    expect(host.hits).toEqual([]);

    // Another project cannot see the run.
    const foreign = await gql(app.graphqlUrl, other.keys.VIEWER, RUN, { id: out.fetchRun.id });
    expect(errorCodes(foreign)).toEqual(['NOT_FOUND']);

    await app.startWorker();
    const run = await endedRun(app, lab.keys.VIEWER, out.fetchRun.id);
    expect(run).toMatchObject({ status: 'SUCCEEDED', total: 8, done: 2, failed: 6 });
    const failures = await failuresByPair(app, lab.id, run);
    expect(Object.keys(failures).sort()).toEqual(['200_3', '200_4', '200_5', '200_6', '200_7', '200_8']);
    expect(failures['200_3']).toMatch(/^UNSUPPORTED_MEDIA: .*text\/html/);
    expect(failures['200_4']).toMatch(/^UNSUPPORTED_MEDIA: /);
    expect(failures['200_5']).toMatch(/^TOO_LARGE: /);
    expect(failures['200_6']).toMatch(/^INVALID: .*within 1500 ms/);
    expect(failures['200_7']).toMatch(/^INVALID: .*More than 3 redirects/);
    expect(failures['200_8']).toMatch(/^INVALID: .*HTTP 404/);

    const fetched = await imagesByPair(app, lab.keys.VIEWER);
    expect(fetched['200_1']).toMatchObject({ source: 'URL', contentHash: sha256(PNG), mimeType: 'image/png', fileName: `${host.base}/figure.png` });
    expect(fetched['200_2']).toMatchObject({ source: 'URL', contentHash: sha256(JPEG), mimeType: 'image/jpeg' });
    expect(sha256(await download(fetched['200_1'].url))).toBe(sha256(PNG));
    expect(sha256(await download(fetched['200_2'].url))).toBe(sha256(JPEG));
    for (const pair of Object.keys(failures)) expect(fetched[pair].contentHash).toBeNull();
  });

  it('bytes another image already holds are a DUPLICATE failure; redirects within the bound are followed; projects stay apart', async () => {
    // Redirects to figure.png, the bytes of 200_1 in this project: one image per bytes.
    const dup = await gql(app.graphqlUrl, lab.keys.CURATOR, IMPORT, { input: { records: [record('250_1', `${host.base}/redirect/3`)] } });
    const dupRun = await endedRun(app, lab.keys.VIEWER, dup.data!.importRecords.fetchRun.id);
    expect(dupRun).toMatchObject({ status: 'FAILED', total: 1, done: 0, failed: 1 });
    expect((await failuresByPair(app, lab.id, dupRun))['250_1']).toMatch(/^DUPLICATE: .*200_1/);

    // The record again, its image already fetched: nothing to fetch, so no run.
    const again = await gql(app.graphqlUrl, lab.keys.CURATOR, IMPORT, { input: { records: [record('200_2', `${host.base}/figure.jpg`)] } });
    expect(again.data!.importRecords).toMatchObject({ recordErrors: [], fetchRun: null, summary: { imagesCreated: 0, imagesUpdated: 1 } });

    // In another project the same bytes are new.
    const viaRedirect = await gql(app.graphqlUrl, other.keys.CURATOR, IMPORT, { input: { records: [record('300_1', `${host.base}/redirect/3`)] } });
    expect(viaRedirect.data!.importRecords.recordErrors).toEqual([]);
    const run = await endedRun(app, other.keys.VIEWER, viaRedirect.data!.importRecords.fetchRun.id);
    expect(run).toMatchObject({ status: 'SUCCEEDED', total: 1, done: 1, failed: 0 });
    const otherList = await gql(app.graphqlUrl, other.keys.VIEWER, IMAGES);
    expect(otherList.data!.images.edges.map((e: { node: unknown }) => e.node)).toEqual([expect.objectContaining({ pairId: '300_1', source: 'URL', contentHash: sha256(PNG) })]);
    expect(Object.keys(await imagesByPair(app, lab.keys.VIEWER))).not.toContain('300_1');
  });

  it('only curators import or upload by URL', async () => {
    const hitsBefore = host.hits.length;
    for (const key of [lab.keys.CLINICIAN, lab.keys.VIEWER]) {
      const res = await gql(app.graphqlUrl, key, IMPORT, { input: { records: [record('400_1', `${host.base}/figure.jpg`)] } });
      expect(errorCodes(res)).toContain('FORBIDDEN');
      const up = await gql(app.graphqlUrl, key, UPLOAD, { input: { url: `${host.base}/octet` } });
      expect(errorCodes(up)).toContain('FORBIDDEN');
    }
    expect(host.hits.length).toBe(hitsBefore);
  });

  it('uploadImage fetches a url with the same checks as a file', async () => {
    const ok = await gql(app.graphqlUrl, lab.keys.CURATOR, UPLOAD, { input: { url: `${host.base}/octet`, metadata: { pairId: '500_1', caption: 'by url' } } });
    expect(ok.data!.uploadImage.userErrors).toEqual([]);
    expect(ok.data!.uploadImage.image).toMatchObject({ pairId: '500_1', source: 'URL', contentHash: sha256(OTHER_JPEG), mimeType: 'image/jpeg' });
    expect(sha256(await download(ok.data!.uploadImage.image.url))).toBe(sha256(OTHER_JPEG));

    const again = await gql(app.graphqlUrl, lab.keys.CURATOR, UPLOAD, { input: { url: `${host.base}/octet` } });
    expect(again.data!.uploadImage.userErrors).toEqual([expect.objectContaining({ code: 'DUPLICATE', field: ['input', 'url'] })]);

    const before = await imageCount(app);
    const cases: [string, string, string[]][] = [
      ['/missing.png', 'INVALID', ['input', 'url']],
      ['/page.html', 'UNSUPPORTED_MEDIA', ['input', 'url']],
      ['/fake.png', 'UNSUPPORTED_MEDIA', ['input', 'url']],
      ['/huge.png', 'TOO_LARGE', ['input', 'url']],
      ['/redirect/5', 'INVALID', ['input', 'url']],
    ];
    for (const [path, code, field] of cases) {
      const res = await gql(app.graphqlUrl, lab.keys.CURATOR, UPLOAD, { input: { url: `${host.base}${path}` } });
      expect(res.data!.uploadImage).toMatchObject({ image: null, userErrors: [expect.objectContaining({ code, field })] });
    }
    const neither = await gql(app.graphqlUrl, lab.keys.CURATOR, UPLOAD, { input: {} });
    expect(neither.data!.uploadImage.userErrors).toEqual([expect.objectContaining({ code: 'INVALID' })]);
    expect(await imageCount(app)).toEqual(before);
  });
});

describe('the IMAGE_FETCH run, attempted again', () => {
  let host: ImageHost;
  let app: TestApp;
  let lab: TestProject;

  beforeAll(async () => {
    host = await startImageHost();
    app = await startTestApp({ IMAGE_FETCH_ALLOW_PRIVATE_NETWORKS: 'true', IMAGE_FETCH_TIMEOUT_MS: '1500' });
    lab = await createTestProject(app, 'fetchagain');
  });
  afterAll(async () => {
    await app?.stop();
    await host?.close();
  });

  it('fetches each image once and counts it once, however many attempts overlap or follow', async () => {
    const records = [record('800_1', `${host.base}/octet`), record('800_2', `${host.base}/figure.jpg`), record('800_3', `${host.base}/missing.png`)];
    const res = await gql(app.graphqlUrl, lab.keys.CURATOR, IMPORT, { input: { records } });
    const runId = fromGlobalId(res.data!.importRecords.fetchRun.id)!.id;
    const kind = new ImageFetchRun(app.services.images, app.services.runs);
    const attempt = async () => kind.execute((await app.services.runs.findForWorker(runId))!, new RunControl(runId, app.services.runs));
    // Two attempts at once (a worker taken for dead while still working), then one after both.
    await Promise.all([attempt(), attempt()]);
    const hitsAfterOverlap = host.hits.length;
    await attempt();
    expect(host.hits.length).toBe(hitsAfterOverlap); // nothing left to fetch: settled images are not fetched again

    const [row] = await app.ds.query(`SELECT total, done, failed, counts_by_status FROM runs WHERE id = $1`, [runId]);
    expect(row).toEqual({ total: 3, done: 2, failed: 1, counts_by_status: { FETCHED: 2, INVALID: 1 } });
    const [{ failures }] = await app.ds.query(`SELECT count(*)::int AS failures FROM run_failures WHERE run_id = $1`, [runId]);
    expect(failures).toBe(1);
    const images = await imagesByPair(app, lab.keys.VIEWER);
    expect(images['800_1'].contentHash).toBe(sha256(OTHER_JPEG));
    expect(images['800_2'].contentHash).toBe(sha256(JPEG));
    expect(images['800_3'].contentHash).toBeNull();
  });
});

describe('images by URL, private networks refused (the default)', () => {
  let host: ImageHost;
  let app: TestApp;
  let lab: TestProject;

  beforeAll(async () => {
    host = await startImageHost();
    app = await startTestApp({ IMAGE_FETCH_TIMEOUT_MS: '3000' }, { worker: true });
    lab = await createTestProject(app, 'ssrflab');
  });
  afterAll(async () => {
    await app?.stop();
    await host?.close();
  });

  it('refuses literal loopback, private and metadata addresses as record errors; nothing is written', async () => {
    const port = new URL(host.base).port;
    const targets = [
      `http://127.0.0.1:${port}/figure.png`,
      `http://[::1]:${port}/figure.png`,
      `http://[::ffff:127.0.0.1]:${port}/figure.png`,
      `http://2130706433:${port}/figure.png`, // 127.0.0.1 written as one number
      `http://0.0.0.0:${port}/figure.png`,
      'http://10.1.2.3/figure.png',
      'http://169.254.169.254/latest/meta-data/',
      'http://192.168.0.10/figure.png',
    ];
    const before = await imageCount(app);
    const res = await gql(app.graphqlUrl, lab.keys.CURATOR, IMPORT, { input: { records: targets.map((url, i) => record(`600_${i}`, url)) } });
    const errors = res.data!.importRecords.recordErrors;
    expect(res.data!.importRecords.fetchRun).toBeNull();
    expect(errors.map((e: { index: number }) => e.index)).toEqual(targets.map((_, i) => i));
    for (const e of errors) {
      expect(e).toMatchObject({ field: 'imgs', code: 'INVALID' });
      expect(e.message).toMatch(/Refused: .* private, loopback or link-local/);
    }
    const up = await gql(app.graphqlUrl, lab.keys.CURATOR, UPLOAD, { input: { url: `http://localhost:${port}/figure.jpg` } });
    expect(up.data!.uploadImage.userErrors).toEqual([expect.objectContaining({ code: 'INVALID', field: ['input', 'url'] })]);
    expect(host.hits).toEqual([]); // refused before any connection reached the host
    expect(await imageCount(app)).toEqual(before);
  });

  it('a name that resolves to loopback is refused by the worker, before connecting: a run failure naming the record', async () => {
    const port = new URL(host.base).port;
    const res = await gql(app.graphqlUrl, lab.keys.CURATOR, IMPORT, { input: { records: [record('700_1', `http://localhost:${port}/figure.png`)] } });
    expect(res.data!.importRecords.recordErrors).toEqual([]);
    const run = await endedRun(app, lab.keys.VIEWER, res.data!.importRecords.fetchRun.id);
    expect(run).toMatchObject({ status: 'FAILED', total: 1, done: 0, failed: 1 });
    expect((await failuresByPair(app, lab.id, run))['700_1']).toMatch(/^INVALID: .*Refused: localhost is a private, loopback or link-local address/);
    expect(host.hits).toEqual([]);
    expect((await imagesByPair(app, lab.keys.VIEWER))['700_1']).toMatchObject({ contentHash: null, sourceUrl: `http://localhost:${port}/figure.png` });
  });
});
