import crypto from 'node:crypto';
import http from 'node:http';
import { AddressInfo } from 'node:net';
import { startTestApp, createTestProject, TestApp, TestProject } from '../support/test-app';
import { gql, errorCodes, GraphQLResponse } from '../support/graphql-client';
import { readSharedImage } from '../support/shared-data';

/**
 * Images by URL (issue 13): importRecords records whose `imgs` is an http(s) URL, and uploadImage's
 * `url`, fetched through the SSRF-guarded fetcher. A local HTTP server plays the image host; the
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
    userErrors { code field message }
  }
}`;
const UPLOAD = `mutation Upload($input: UploadImageInput!) {
  uploadImage(input: $input) { image { id pairId source fileName contentHash mimeType width height url } userErrors { code field message } }
}`;
const IMAGES = `{ images(first: 50) { edges { node { pairId source fileName contentHash mimeType url } } } }`;

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

  it('a failing URL is a record error with its index, field and code, and nothing of the import is written', async () => {
    const before = await imageCount(app);
    const records = [
      record('100_1', `${host.base}/figure.png`),
      record('100_2', `${host.base}/page.html`),
      record('100_3', `${host.base}/fake.png`),
      record('100_4', `${host.base}/huge.png`),
      record('100_5', `${host.base}/slow.png`),
      record('100_6', `${host.base}/redirect/4`),
      record('100_7', `${host.base}/missing.png`),
      { pair_id: '100_8', pmid: '100', image: 'ftp://example.org/figure.png' },
    ];
    const res = await gql(app.graphqlUrl, lab.keys.CURATOR, IMPORT, { input: { records } });
    expect(res.errors).toBeUndefined();
    const out = res.data!.importRecords;
    expect(out.summary).toBeNull();
    const byIndex = Object.fromEntries(out.recordErrors.map((e: { index: number }) => [e.index, e]));
    expect(Object.keys(byIndex).map(Number).sort()).toEqual([1, 2, 3, 4, 5, 6]);
    expect(byIndex[1]).toMatchObject({ field: 'imgs', code: 'UNSUPPORTED_MEDIA' });
    expect(byIndex[1].message).toMatch(/text\/html/);
    expect(byIndex[2]).toMatchObject({ field: 'imgs', code: 'UNSUPPORTED_MEDIA' });
    expect(byIndex[3]).toMatchObject({ field: 'imgs', code: 'TOO_LARGE' });
    expect(byIndex[4]).toMatchObject({ field: 'imgs', code: 'INVALID' });
    expect(byIndex[4].message).toMatch(/within 1500 ms/);
    expect(byIndex[5]).toMatchObject({ field: 'imgs', code: 'INVALID' });
    expect(byIndex[5].message).toMatch(/More than 3 redirects/);
    expect(byIndex[6]).toMatchObject({ field: 'imgs', code: 'INVALID' });
    expect(byIndex[6].message).toMatch(/HTTP 404/);
    // Not an http(s) URL: a file name that matched no uploaded file, as before (no fetch, no error).
    expect(host.hits).not.toContain('ftp://example.org/figure.png');
    expect(await imageCount(app)).toEqual(before);
  });

  it('imports records whose imgs are URLs: the stored bytes are the served files, source URL, redirects within the bound followed', async () => {
    const records = [
      record('200_1', `${host.base}/figure.png`, { conversations: [{ from: 'human', value: 'What is shown?' }, { from: 'gpt', value: 'A patch.' }] }),
      record('200_2', `${host.base}/figure.jpg`),
      record('200_3', `${host.base}/redirect/3`, { fig_caption: 'same bytes as 200_1 would be a duplicate' }),
    ];
    // 200_3 redirects to figure.png, the same bytes as 200_1: one image per bytes, so that is a record error.
    const dup = await gql(app.graphqlUrl, lab.keys.CURATOR, IMPORT, { input: { records } });
    expect(dup.data!.importRecords.recordErrors).toEqual([expect.objectContaining({ index: 2, field: 'imgs' })]);
    expect(dup.data!.importRecords.recordErrors[0].message).toMatch(/same image bytes as record 0/);

    const res = await gql(app.graphqlUrl, lab.keys.CURATOR, IMPORT, { input: { records: records.slice(0, 2), createDemonstrations: true } });
    expect(res.data!.importRecords.recordErrors).toEqual([]);
    expect(res.data!.importRecords.summary).toMatchObject({ imagesCreated: 2, imagesWithBytes: 2, demonstrationsCreated: 1 });

    const viaRedirect = await gql(app.graphqlUrl, other.keys.CURATOR, IMPORT, { input: { records: [record('300_1', `${host.base}/redirect/3`)] } });
    expect(viaRedirect.data!.importRecords.recordErrors).toEqual([]);
    expect(viaRedirect.data!.importRecords.summary).toMatchObject({ imagesCreated: 1, imagesWithBytes: 1 });

    const list = await gql(app.graphqlUrl, lab.keys.VIEWER, IMAGES);
    const byPair = Object.fromEntries(list.data!.images.edges.map(({ node }: { node: { pairId: string } }) => [node.pairId, node]));
    expect(Object.keys(byPair).sort()).toEqual(['200_1', '200_2']); // the other project's image is not listed
    expect(byPair['200_1']).toMatchObject({ source: 'URL', contentHash: sha256(PNG), mimeType: 'image/png', fileName: `${host.base}/figure.png` });
    expect(byPair['200_2']).toMatchObject({ source: 'URL', contentHash: sha256(JPEG), mimeType: 'image/jpeg' });
    expect(sha256(await download(byPair['200_1'].url))).toBe(sha256(PNG));
    expect(sha256(await download(byPair['200_2'].url))).toBe(sha256(JPEG));

    const otherList = await gql(app.graphqlUrl, other.keys.VIEWER, IMAGES);
    expect(otherList.data!.images.edges.map((e: { node: unknown }) => e.node)).toEqual([expect.objectContaining({ pairId: '300_1', source: 'URL', contentHash: sha256(PNG) })]);
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

describe('images by URL, private networks refused (the default)', () => {
  let host: ImageHost;
  let app: TestApp;
  let lab: TestProject;

  beforeAll(async () => {
    host = await startImageHost();
    app = await startTestApp({ IMAGE_FETCH_TIMEOUT_MS: '3000' });
    lab = await createTestProject(app, 'ssrflab');
  });
  afterAll(async () => {
    await app?.stop();
    await host?.close();
  });

  it('refuses loopback, localhost, private and metadata addresses before connecting; nothing is written', async () => {
    const port = new URL(host.base).port;
    const targets = [
      `http://127.0.0.1:${port}/figure.png`,
      `http://localhost:${port}/figure.png`,
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
});
