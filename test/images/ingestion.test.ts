import crypto from 'node:crypto';
import path from 'node:path';
import { execFile } from 'node:child_process';
import sharp from 'sharp';
import { startTestApp, createTestProject, TestApp, TestProject } from '../support/test-app';
import { gql, gqlUpload, errorCodes, GraphQLResponse, UploadFile } from '../support/graphql-client';
import { PROJECT_ROOT, readDemonstrations, readSharedImage, SHARED_DATA, SHARED_IMAGE_NAMES } from '../support/shared-data';

/**
 * Ingestion through real HTTP: image uploads, LLaVA-Med / BioMed-VITAL record imports (inline, as a
 * file, with image files), the failures that must write nothing, and the CLI import.
 */

const DEMONSTRATIONS_FILE = path.join(SHARED_DATA, 'clinician-demonstrations.json');
const THUMBNAIL_SIZE = 256; // the configured default

/** The `domain` flags of the records and the modality each one means (BioMed-VITAL README). */
const FLAG_MODALITY: Record<string, string> = { chest_xray: 'CHEST_XRAY', mri: 'MRI', ct_scan: 'CT', histology: 'HISTOLOGY', gross: 'GROSS' };

const IMAGE_FIELDS = 'id pairId pmid figLabel figId graphicRef fileName caption mentions modalities source contentHash mimeType width height byteSize url thumbnailUrl';

const UPLOAD = `mutation Upload($input: UploadImageInput!) {
  uploadImage(input: $input) { image { ${IMAGE_FIELDS} } userErrors { code field message } }
}`;

const IMPORT = `mutation Import($input: ImportRecordsInput!) {
  importRecords(input: $input) {
    summary { imagesCreated imagesUpdated imagesWithBytes demonstrationsCreated unmatchedFiles }
    recordErrors { index recordId field message }
    userErrors { code field message }
  }
}`;

const sha256 = (bytes: Buffer) => crypto.createHash('sha256').update(bytes).digest('hex');
const sorted = <T>(values: T[]) => [...values].sort();

function expectedModalities(domain: Record<string, boolean> | undefined): string[] {
  const flagged = Object.entries(domain ?? {})
    .filter(([, on]) => on)
    .map(([flag]) => FLAG_MODALITY[flag]);
  return sorted(flagged.length ? flagged : ['OTHER']);
}

function uploadImage(app: TestApp, key: string, name: string, bytes: Buffer, metadata?: Record<string, unknown>): Promise<GraphQLResponse> {
  return gqlUpload(app.graphqlUrl, key, UPLOAD, { input: { file: null, ...(metadata ? { metadata } : {}) } }, [{ path: 'input.file', name, bytes }]);
}

function importRecords(app: TestApp, key: string, input: Record<string, unknown>, files: UploadFile[] = []): Promise<GraphQLResponse> {
  return files.length ? gqlUpload(app.graphqlUrl, key, IMPORT, { input }, files) : gql(app.graphqlUrl, key, IMPORT, { input });
}

interface Counts {
  images: number;
  blobs: number;
  demonstrations: number;
}

async function counts(app: TestApp): Promise<Counts> {
  const [row] = await app.ds.query(
    `SELECT (SELECT count(*) FROM images)::int AS images, (SELECT count(*) FROM blob_objects)::int AS blobs, (SELECT count(*) FROM demonstrations)::int AS demonstrations`,
  );
  return row;
}

async function download(url: string, headers: Record<string, string> = {}): Promise<{ status: number; type: string | null; bytes: Buffer }> {
  const res = await fetch(url, { headers });
  return { status: res.status, type: res.headers.get('content-type'), bytes: Buffer.from(await res.arrayBuffer()) };
}

/** The uuid of an image, from the path of its signed URL. */
function imageUuid(url: string): string {
  const match = /\/files\/images\/([0-9a-f-]{36})\//.exec(new URL(url).pathname);
  if (!match) throw new Error(`no image id in ${url}`);
  return match[1];
}

/** A solid PNG of the given size, for limit tests that need exact dimensions. */
function solidPng(width: number, height: number): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: { r: 40, g: 90, b: 160 } } }).png().toBuffer();
}

/** Metadata per shared image; `modalities` lists one twice to check it is stored once. */
function metadataFor(name: string, index: number) {
  const modalities = [['HISTOLOGY'], ['OTHER'], ['CT', 'MRI', 'CT'], ['MRI'], ['GROSS', 'HISTOLOGY']][index];
  return {
    pmid: String(30000000 + index),
    pairId: `upload_${index}_${name}`,
    caption: `Figure ${index + 1}: example figure ${name} from the LLaVA-Med demo set.`,
    mentions: [`First sentence citing ${name}.`, `Second sentence citing figure ${index + 1}.`, 'A third, later sentence.'],
    modalities,
  };
}

describe('image upload', () => {
  let app: TestApp;
  let lab: TestProject;
  const uploaded = new Map<string, Record<string, any>>();

  beforeAll(async () => {
    app = await startTestApp();
    lab = await createTestProject(app, 'upload-lab');
  });
  afterAll(() => app.stop());

  it.each(SHARED_IMAGE_NAMES.map((name, i) => [name, i] as const))('stores %s with its metadata and the dimensions sharp reads', async (name, index) => {
    const bytes = readSharedImage(name);
    const meta = await sharp(bytes).metadata();
    const metadata = metadataFor(name, index);
    const res = await uploadImage(app, lab.keys.CURATOR, name, bytes, metadata);
    expect(res.errors).toBeUndefined();
    expect(res.data!.uploadImage.userErrors).toEqual([]);
    const image = res.data!.uploadImage.image;
    expect(image).toMatchObject({
      width: meta.width,
      height: meta.height,
      mimeType: `image/${meta.format}`,
      byteSize: bytes.length,
      contentHash: sha256(bytes),
      fileName: name,
      source: 'UPLOAD',
      pmid: metadata.pmid,
      pairId: metadata.pairId,
      caption: metadata.caption,
      mentions: metadata.mentions,
    });
    expect(sorted(image.modalities)).toEqual(sorted([...new Set(metadata.modalities)]));
    expect(image.url).toMatch(/^http:\/\//);
    expect(image.thumbnailUrl).toMatch(/^http:\/\//);
    uploaded.set(name, image);

    const rows = await app.ds.query(`SELECT width, height, byte_size, content_hash FROM images WHERE id = $1`, [imageUuid(image.url)]);
    expect(rows).toEqual([{ width: meta.width, height: meta.height, byte_size: bytes.length, content_hash: sha256(bytes) }]);
  });

  it('lists every uploaded image', async () => {
    const res = await gql(app.graphqlUrl, lab.keys.VIEWER, `{ images(first: 100, filter: { hasBytes: true }) { totalCount edges { node { fileName contentHash } } } }`);
    expect(res.errors).toBeUndefined();
    expect(res.data!.images.totalCount).toBe(SHARED_IMAGE_NAMES.length);
    const byName = Object.fromEntries(res.data!.images.edges.map((e: any) => [e.node.fileName, e.node.contentHash]));
    expect(byName).toEqual(Object.fromEntries(SHARED_IMAGE_NAMES.map((n) => [n, sha256(readSharedImage(n))])));
  });

  it.each(SHARED_IMAGE_NAMES)('serves the original of %s byte for byte from its signed URL, without an API key', async (name) => {
    const image = uploaded.get(name)!;
    const file = await download(image.url);
    expect(file.status).toBe(200);
    expect(file.type).toBe(image.mimeType);
    expect(file.bytes.equals(readSharedImage(name))).toBe(true);
  });

  it.each(SHARED_IMAGE_NAMES)('serves a WebP thumbnail of %s that fits the thumbnail size, then serves it from the cache', async (name) => {
    const image = uploaded.get(name)!;
    const thumbKeys = () =>
      app.ds.query(`SELECT key, data FROM blob_objects WHERE key LIKE $1 AND key LIKE $2`, [`projects/${lab.id}/thumbnails/%`, `%${image.contentHash}%`]) as Promise<{ key: string; data: Buffer }[]>;
    expect(await thumbKeys()).toHaveLength(0);

    const first = await download(image.thumbnailUrl);
    expect(first.status).toBe(200);
    expect(first.type).toBe('image/webp');
    const thumb = await sharp(first.bytes).metadata();
    expect(thumb.format).toBe('webp');
    expect(Math.max(thumb.width!, thumb.height!)).toBe(Math.min(THUMBNAIL_SIZE, Math.max(image.width, image.height)));
    expect(Math.abs(thumb.width! / thumb.height! - image.width / image.height)).toBeLessThan(0.02);

    const cached = await thumbKeys();
    expect(cached).toHaveLength(1);
    expect(cached[0].data.equals(first.bytes)).toBe(true);

    const second = await download(image.thumbnailUrl);
    expect(second.status).toBe(200);
    expect(second.bytes.equals(first.bytes)).toBe(true);
    expect(await thumbKeys()).toHaveLength(1);
  });

  it('answers a thumbnail request with the cached bytes, not a fresh rendering', async () => {
    const image = uploaded.get(SHARED_IMAGE_NAMES[0])!;
    const [row] = await app.ds.query(`SELECT key, data FROM blob_objects WHERE key LIKE $1 AND key LIKE $2`, [`projects/${lab.id}/thumbnails/%`, `%${image.contentHash}%`]);
    expect(row).toBeDefined();
    const marker = await sharp({ create: { width: 7, height: 5, channels: 3, background: { r: 255, g: 0, b: 0 } } }).webp().toBuffer();
    await app.ds.query(`UPDATE blob_objects SET data = $2, byte_size = $3 WHERE key = $1`, [row.key, marker, marker.length]);
    try {
      const served = await download(image.thumbnailUrl);
      expect(served.bytes.equals(marker)).toBe(true);
    } finally {
      await app.ds.query(`UPDATE blob_objects SET data = $2, byte_size = $3 WHERE key = $1`, [row.key, row.data, row.data.length]);
    }
  });

  it('refuses file requests with a tampered signature, no credentials, or a key of another project', async () => {
    const image = uploaded.get(SHARED_IMAGE_NAMES[1])!;
    const url = new URL(image.url);
    const signature = url.searchParams.get('signature')!;
    url.searchParams.set('signature', (signature[0] === 'A' ? 'B' : 'A') + signature.slice(1));
    expect((await download(url.toString())).status).toBe(403);

    const bare = `${app.url}/files/images/${imageUuid(image.url)}/original`;
    expect((await download(bare)).status).toBe(401);
    const other = await createTestProject(app, 'upload-other');
    expect((await download(bare, { authorization: `Bearer ${other.keys.OWNER}` })).status).toBe(404);
    const own = await download(bare, { authorization: `Bearer ${lab.keys.VIEWER}` });
    expect(own.status).toBe(200);
    expect(own.bytes.equals(readSharedImage(SHARED_IMAGE_NAMES[1]))).toBe(true);
  });
});

describe('bad uploads answer a clear error and write nothing', () => {
  let app: TestApp;
  let lab: TestProject;
  const jpeg = readSharedImage('synpic32933.jpg');

  beforeAll(async () => {
    app = await startTestApp();
    lab = await createTestProject(app, 'bad-upload-lab');
    const first = await uploadImage(app, lab.keys.CURATOR, 'synpic32933.jpg', jpeg, { pairId: 'first_pair' });
    expect(first.data!.uploadImage.userErrors).toEqual([]);
  });
  afterAll(() => app.stop());

  async function expectUserError(file: { name: string; bytes: Buffer }, code: string, metadata?: Record<string, unknown>): Promise<Record<string, any>> {
    const before = await counts(app);
    const res = await uploadImage(app, lab.keys.CURATOR, file.name, file.bytes, metadata);
    expect(res.errors).toBeUndefined();
    expect(res.data!.uploadImage.image).toBeNull();
    expect(res.data!.uploadImage.userErrors).toHaveLength(1);
    const error = res.data!.uploadImage.userErrors[0];
    expect(error.code).toBe(code);
    expect(error.message.length).toBeGreaterThan(0);
    expect(await counts(app)).toEqual(before);
    return error;
  }

  it('answers DUPLICATE for the same bytes twice, with no second row', async () => {
    const error = await expectUserError({ name: 'copy.jpg', bytes: jpeg }, 'DUPLICATE');
    expect(error.field).toEqual(['input', 'file']);
    const rows = await app.ds.query(`SELECT count(*)::int AS n FROM images WHERE content_hash = $1`, [sha256(jpeg)]);
    expect(rows[0].n).toBe(1);
  });

  it('answers DUPLICATE for new bytes under a pair id already taken', async () => {
    const error = await expectUserError({ name: 'xy_chromosome.jpg', bytes: readSharedImage('xy_chromosome.jpg') }, 'DUPLICATE', { pairId: 'first_pair' });
    expect(error.field).toEqual(['input', 'metadata', 'pairId']);
  });

  it('answers UNSUPPORTED_MEDIA for a truncated JPEG', async () => {
    const half = jpeg.subarray(0, Math.floor(jpeg.length / 2));
    expect((await sharp(half).metadata()).format).toBe('jpeg'); // its header still reads as a JPEG
    const error = await expectUserError({ name: 'truncated.jpg', bytes: half }, 'UNSUPPORTED_MEDIA');
    expect(error.field).toEqual(['input', 'file']);
  });

  it.each([
    ['random bytes', 'noise.png', crypto.randomBytes(4096)],
    ['a text file', 'notes.jpg', Buffer.from('These are not the pixels you are looking for.\n'.repeat(40), 'utf8')],
  ])('answers UNSUPPORTED_MEDIA for %s', async (_label, name, bytes) => {
    await expectUserError({ name, bytes }, 'UNSUPPORTED_MEDIA');
  });

  it('answers INVALID for an empty file', async () => {
    const error = await expectUserError({ name: 'empty.png', bytes: Buffer.alloc(0) }, 'INVALID');
    expect(error.field).toEqual(['input', 'file']);
  });

  it.each([
    ['an invalid modality', { metadata: { modalities: ['XRAY'] } }],
    ['an unknown metadata field', { metadata: { caption: 'x', magnification: '40x' } }],
  ])('rejects %s in metadata variables before the resolver runs', async (_label, extra) => {
    const before = await counts(app);
    const res = await gqlUpload(app.graphqlUrl, lab.keys.CURATOR, UPLOAD, { input: { file: null, ...extra } }, [
      { path: 'input.file', name: 'xy_chromosome.jpg', bytes: readSharedImage('xy_chromosome.jpg') },
    ]);
    expect(res.status).toBe(400);
    expect(errorCodes(res)).toEqual(['BAD_USER_INPUT']);
    expect(res.data ?? null).toBeNull();
    expect(await counts(app)).toEqual(before);
  });

  it.each([
    ['an invalid modality', 'metadata: { modalities: [XRAY] }'],
    ['an unknown metadata field', 'metadata: { caption: "x", magnification: "40x" }'],
  ])('rejects %s written in the query with GRAPHQL_VALIDATION_FAILED', async (_label, metadata) => {
    const before = await counts(app);
    const query = `mutation($file: Upload!) { uploadImage(input: { file: $file, ${metadata} }) { image { id } userErrors { code } } }`;
    const res = await gqlUpload(app.graphqlUrl, lab.keys.CURATOR, query, { file: null }, [{ path: 'file', name: 'xy_chromosome.jpg', bytes: readSharedImage('xy_chromosome.jpg') }]);
    expect(res.status).toBe(400);
    expect(errorCodes(res)).toEqual(['GRAPHQL_VALIDATION_FAILED']);
    expect(await counts(app)).toEqual(before);
  });

  it.each(['VIEWER', 'CLINICIAN'] as const)('refuses a %s key with FORBIDDEN', async (role) => {
    const before = await counts(app);
    const res = await uploadImage(app, lab.keys[role], 'xy_chromosome.jpg', readSharedImage('xy_chromosome.jpg'), { caption: 'x' });
    expect(errorCodes(res)).toEqual(['FORBIDDEN']);
    expect(res.data?.uploadImage ?? null).toBeNull();
    expect(await counts(app)).toEqual(before);
  });

  it('refuses a multipart request without the preflight header (CSRF prevention)', async () => {
    const before = await counts(app);
    const form = new FormData();
    form.append('operations', JSON.stringify({ query: UPLOAD, variables: { input: { file: null } } }));
    form.append('map', JSON.stringify({ 0: ['variables.input.file'] }));
    form.append('0', new Blob([new Uint8Array(readSharedImage('xy_chromosome.jpg'))], { type: 'image/jpeg' }), 'xy_chromosome.jpg');
    const res = await fetch(app.graphqlUrl, { method: 'POST', headers: { authorization: `Bearer ${lab.keys.CURATOR}` }, body: form });
    expect(res.status).toBe(400);
    expect(await res.text()).toMatch(/CSRF|preflight/i);
    expect(await counts(app)).toEqual(before);
  });

  describe('with small limits', () => {
    const limits = { MAX_UPLOAD_BYTES: 60_000, MAX_IMAGE_PIXELS: 200_000, MAX_IMAGE_SIDE: 800 };
    let small: TestApp;
    let smallLab: TestProject;

    beforeAll(async () => {
      small = await startTestApp(Object.fromEntries(Object.entries(limits).map(([k, v]) => [k, String(v)])));
      smallLab = await createTestProject(small, 'limits-lab');
    });
    afterAll(() => small.stop());

    async function expectTooLarge(name: string, bytes: Buffer, messagePattern: RegExp): Promise<void> {
      const before = await counts(small);
      const res = await uploadImage(small, smallLab.keys.CURATOR, name, bytes);
      expect(res.errors).toBeUndefined();
      expect(res.data!.uploadImage.image).toBeNull();
      expect(res.data!.uploadImage.userErrors).toEqual([{ code: 'TOO_LARGE', field: ['input', 'file'], message: expect.stringMatching(messagePattern) }]);
      expect(await counts(small)).toEqual(before);
    }

    it.each(['synpic42202.jpg', 'bio_patch.png', 'med_img_1.png'])('answers TOO_LARGE for %s, over MAX_UPLOAD_BYTES', async (name) => {
      const bytes = readSharedImage(name);
      expect(bytes.length).toBeGreaterThan(limits.MAX_UPLOAD_BYTES);
      await expectTooLarge(name, bytes, new RegExp(`over ${limits.MAX_UPLOAD_BYTES} bytes`));
    });

    it('answers TOO_LARGE for a file one byte over MAX_UPLOAD_BYTES, and accepts one at the limit', async () => {
      // Trailing bytes after a PNG's IEND chunk are ignored by decoders, so pad a small valid PNG to size.
      const png = await solidPng(64, 64);
      const padded = (n: number) => Buffer.concat([png, Buffer.alloc(n - png.length)]);
      await expectTooLarge('over.png', padded(limits.MAX_UPLOAD_BYTES + 1), /bytes/);
      const res = await uploadImage(small, smallLab.keys.CURATOR, 'at-limit.png', padded(limits.MAX_UPLOAD_BYTES));
      expect(res.data!.uploadImage.userErrors).toEqual([]);
      expect(res.data!.uploadImage.image).toMatchObject({ width: 64, height: 64, byteSize: limits.MAX_UPLOAD_BYTES });
    });

    it('answers TOO_LARGE for an import whose image file or records file is over MAX_UPLOAD_BYTES', async () => {
      const before = await counts(small);
      const record = { pair_id: 'big_1', pmid: '1', imgs: 'synpic42202.jpg', fig_caption: 'big' };
      const image = await importRecords(small, smallLab.keys.CURATOR, { records: [record], images: [null] }, [
        { path: 'input.images.0', name: 'synpic42202.jpg', bytes: readSharedImage('synpic42202.jpg') },
      ]);
      expect(image.errors).toBeUndefined();
      expect(image.data!.importRecords).toEqual({ summary: null, recordErrors: [], userErrors: [{ code: 'TOO_LARGE', field: ['images'], message: expect.stringContaining('synpic42202.jpg') }] });
      const bigJson = Buffer.from(JSON.stringify(readDemonstrations()), 'utf8');
      expect(bigJson.length).toBeGreaterThan(limits.MAX_UPLOAD_BYTES);
      const file = await importRecords(small, smallLab.keys.CURATOR, { recordsFile: null }, [{ path: 'input.recordsFile', name: 'all.json', bytes: bigJson, type: 'application/json' }]);
      expect(file.errors).toBeUndefined();
      expect(file.data!.importRecords).toEqual({ summary: null, recordErrors: [], userErrors: [{ code: 'TOO_LARGE', field: ['recordsFile'], message: expect.stringContaining('all.json') }] });
      expect(await counts(small)).toEqual(before);
    });

    it('answers TOO_LARGE for an image over MAX_IMAGE_PIXELS', async () => {
      const bytes = readSharedImage('xy_chromosome.jpg');
      const meta = await sharp(bytes).metadata();
      expect(bytes.length).toBeLessThanOrEqual(limits.MAX_UPLOAD_BYTES);
      expect(Math.max(meta.width!, meta.height!)).toBeLessThanOrEqual(limits.MAX_IMAGE_SIDE);
      expect(meta.width! * meta.height!).toBeGreaterThan(limits.MAX_IMAGE_PIXELS);
      await expectTooLarge('xy_chromosome.jpg', bytes, /pixels/);
    });

    it('answers TOO_LARGE for an image over MAX_IMAGE_SIDE', async () => {
      const bytes = await solidPng(limits.MAX_IMAGE_SIDE + 1, 50);
      expect(bytes.length).toBeLessThanOrEqual(limits.MAX_UPLOAD_BYTES);
      await expectTooLarge('wide.png', bytes, /side/);
    });

    it('accepts an image exactly at the side limit', async () => {
      const bytes = await solidPng(limits.MAX_IMAGE_SIDE, 50);
      const res = await uploadImage(small, smallLab.keys.CURATOR, 'edge.png', bytes);
      expect(res.data!.uploadImage.userErrors).toEqual([]);
      expect(res.data!.uploadImage.image).toMatchObject({ width: limits.MAX_IMAGE_SIDE, height: 50, mimeType: 'image/png', byteSize: bytes.length });
    });
  });
});

describe('importing the clinician demonstrations', () => {
  let app: TestApp;
  let lab: TestProject;
  const records = readDemonstrations();
  const distinctPairs = new Set(records.map((r) => r.pair_id)).size;
  const withConversation = records.filter((r) => Array.isArray(r.conversations) && r.conversations.length > 0);
  const distinctConversations = new Set(withConversation.map((r) => `${r.pair_id}\n${JSON.stringify(r.conversations)}`)).size;

  const DEMONSTRATIONS = `query($filter: DemonstrationFilter) {
    demonstrations(first: 100, filter: $filter) {
      totalCount
      edges { node { externalId active turns { from value } image { ${IMAGE_FIELDS} } } }
    }
  }`;

  beforeAll(async () => {
    app = await startTestApp();
    lab = await createTestProject(app, 'demo-lab');
  });
  afterAll(() => app.stop());

  it('reads the file the README describes', () => {
    expect(records.length).toBeGreaterThan(0);
    expect(records.length).toBeLessThanOrEqual(100); // one page of demonstrations below
  });

  it('creates one image per pair id and one demonstration per conversation', async () => {
    const before = await counts(app);
    const res = await importRecords(app, lab.keys.CURATOR, { records });
    expect(res.errors).toBeUndefined();
    const payload = res.data!.importRecords;
    expect(payload.userErrors).toEqual([]);
    expect(payload.recordErrors).toEqual([]);
    expect(payload.summary).toEqual({ imagesCreated: distinctPairs, imagesUpdated: 0, imagesWithBytes: 0, demonstrationsCreated: distinctConversations, unmatchedFiles: [] });
    const after = await counts(app);
    expect(after).toEqual({ images: before.images + distinctPairs, demonstrations: before.demonstrations + distinctConversations, blobs: before.blobs });
  });

  it('filters demonstrations by modality as the domain flags say', async () => {
    const all = await gql(app.graphqlUrl, lab.keys.VIEWER, DEMONSTRATIONS, {});
    expect(all.data!.demonstrations.totalCount).toBe(distinctConversations);
    for (const [flag, modality] of Object.entries(FLAG_MODALITY)) {
      const expected = withConversation.filter((r) => r.domain?.[flag] === true).length;
      const res = await gql(app.graphqlUrl, lab.keys.VIEWER, DEMONSTRATIONS, { filter: { modalities: [modality] } });
      expect(res.errors).toBeUndefined();
      expect({ modality, count: res.data!.demonstrations.totalCount }).toEqual({ modality, count: expected });
      expect(res.data!.demonstrations.edges).toHaveLength(expected);
      for (const edge of res.data!.demonstrations.edges) expect(edge.node.image.modalities).toContain(modality);
    }
    const ct = withConversation.filter((r) => r.domain?.ct_scan === true).length;
    const ctOrXray = await gql(app.graphqlUrl, lab.keys.VIEWER, DEMONSTRATIONS, { filter: { modalities: ['CT', 'CHEST_XRAY'] } });
    expect(ctOrXray.data!.demonstrations.totalCount).toBe(withConversation.filter((r) => r.domain?.ct_scan || r.domain?.chest_xray).length);
    expect(ctOrXray.data!.demonstrations.totalCount).toBeGreaterThan(ct);
  });

  it('stores each record: caption, mentions in order, modalities, identifiers and turns', async () => {
    const res = await gql(app.graphqlUrl, lab.keys.CLINICIAN, DEMONSTRATIONS, {});
    expect(res.errors).toBeUndefined();
    const byExternalId = new Map<string, any>(res.data!.demonstrations.edges.map((e: any) => [e.node.externalId, e.node]));
    expect(byExternalId.size).toBe(withConversation.length);
    for (const record of withConversation) {
      const node = byExternalId.get(String(record.id));
      expect(node).toBeDefined();
      expect(node.active).toBe(true);
      expect(node.turns).toEqual(record.conversations.map((t: any) => ({ from: t.from.toUpperCase(), value: t.value })));
      expect(node.image).toMatchObject({
        pairId: record.pair_id,
        pmid: String(record.pmid),
        figLabel: record.fig_label ?? null,
        figId: record.fig_id ?? null,
        graphicRef: record.graphic_ref ?? null,
        fileName: record.imgs,
        caption: record.fig_caption ?? '',
        mentions: (record.in_text_mention ?? []).map((m: any) => m.tokens),
        source: 'IMPORT',
        contentHash: null,
        width: null,
        url: null,
        thumbnailUrl: null,
      });
      expect(sorted(node.image.modalities)).toEqual(expectedModalities(record.domain));
    }
  });

  it('re-imports the same file without creating anything', async () => {
    const before = await counts(app);
    const res = await importRecords(app, lab.keys.OWNER, { records });
    expect(res.data!.importRecords.recordErrors).toEqual([]);
    expect(res.data!.importRecords.summary).toEqual({ imagesCreated: 0, imagesUpdated: distinctPairs, imagesWithBytes: 0, demonstrationsCreated: 0, unmatchedFiles: [] });
    expect(await counts(app)).toEqual(before);
    const all = await gql(app.graphqlUrl, lab.keys.VIEWER, DEMONSTRATIONS, {});
    expect(all.data!.demonstrations.totalCount).toBe(distinctConversations);
  });

  it('updates an image in place when its record changes', async () => {
    const changed = records.map((r, i) => (i === 0 ? { ...r, fig_caption: `${r.fig_caption} (revised)` } : r));
    const res = await importRecords(app, lab.keys.CURATOR, { records: changed, createDemonstrations: false });
    expect(res.data!.importRecords.summary).toMatchObject({ imagesCreated: 0, imagesUpdated: distinctPairs, demonstrationsCreated: 0 });
    const rows = await app.ds.query(`SELECT caption FROM images WHERE pair_id = $1`, [records[0].pair_id]);
    expect(rows).toEqual([{ caption: `${records[0].fig_caption} (revised)` }]);
  });
});

describe('importing figure records with their image files', () => {
  let app: TestApp;
  let lab: TestProject;
  const images = Object.fromEntries(SHARED_IMAGE_NAMES.map((n) => [n, readSharedImage(n)]));
  const domains: Record<string, boolean>[] = [{ histology: true }, { mri: true, ct_scan: false }, { ct_scan: true }, { chest_xray: true, ct_scan: true }, { gross: true }];
  const figureRecords = SHARED_IMAGE_NAMES.map((name, i) => ({
    pair_id: `3100000${i}_F${i + 1}`,
    pmid: i % 2 ? 31000000 + i : String(31000000 + i),
    imgs: name,
    fig_caption: `Figure ${i + 1}. ${name} as a figure record.`,
    domain: domains[i],
    in_text_mention: [{ tokens: `As shown in Figure ${i + 1}, ${name}.`, entities: [] }],
  }));
  const files = (names: string[], at: string): UploadFile[] => names.map((n, i) => ({ path: `${at}.${i}`, name: n, bytes: images[n] }));

  beforeAll(async () => {
    app = await startTestApp();
    lab = await createTestProject(app, 'figure-lab');
  });
  afterAll(() => app.stop());

  it('attaches uploaded files to the records naming them and reports the file no record names', async () => {
    const named = figureRecords.slice(0, 3);
    const withoutFile = { ...figureRecords[3], imgs: 'not_uploaded.jpg' };
    const unnamed = [SHARED_IMAGE_NAMES[3], SHARED_IMAGE_NAMES[4]];
    const before = await counts(app);
    const res = await importRecords(app, lab.keys.CURATOR, { records: [...named, withoutFile], images: SHARED_IMAGE_NAMES.map(() => null) }, files(SHARED_IMAGE_NAMES, 'input.images'));
    expect(res.errors).toBeUndefined();
    expect(res.data!.importRecords.recordErrors).toEqual([]);
    expect(res.data!.importRecords.summary).toEqual({ imagesCreated: 4, imagesUpdated: 0, imagesWithBytes: 3, demonstrationsCreated: 0, unmatchedFiles: sorted(unnamed) });
    const after = await counts(app);
    expect(after.images).toBe(before.images + 4);
    expect(after.blobs).toBe(before.blobs + 3);

    const res2 = await gql(app.graphqlUrl, lab.keys.VIEWER, `{ images(first: 100, filter: { hasBytes: false }) { totalCount edges { node { pairId fileName url } } } }`);
    expect(res2.data!.images).toEqual({ totalCount: 1, edges: [{ node: { pairId: withoutFile.pair_id, fileName: 'not_uploaded.jpg', url: null } }] });
  });

  it('imports records from a JSON file with the remaining image files', async () => {
    const rest = figureRecords.slice(3);
    const json = Buffer.from(JSON.stringify(rest), 'utf8');
    const before = await counts(app);
    const res = await importRecords(app, lab.keys.CURATOR, { recordsFile: null, images: rest.map(() => null) }, [
      { path: 'input.recordsFile', name: 'figures.json', bytes: json, type: 'application/json' },
      ...files(rest.map((r) => r.imgs), 'input.images'),
    ]);
    expect(res.errors).toBeUndefined();
    expect(res.data!.importRecords.recordErrors).toEqual([]);
    // figureRecords[3]'s pair id was imported above without bytes: it is updated and gets them now.
    expect(res.data!.importRecords.summary).toEqual({ imagesCreated: 1, imagesUpdated: 1, imagesWithBytes: 2, demonstrationsCreated: 0, unmatchedFiles: [] });
    const after = await counts(app);
    expect(after.images).toBe(before.images + 1);
    expect(after.blobs).toBe(before.blobs + 2);
  });

  it('gives every record its bytes, dimensions and metadata', async () => {
    const res = await gql(app.graphqlUrl, lab.keys.VIEWER, `{ images(first: 100, filter: { hasBytes: true }) { totalCount edges { node { ${IMAGE_FIELDS} } } } }`);
    expect(res.errors).toBeUndefined();
    expect(res.data!.images.totalCount).toBe(figureRecords.length);
    const byPair = new Map<string, any>(res.data!.images.edges.map((e: any) => [e.node.pairId, e.node]));
    for (const record of figureRecords) {
      const bytes = images[record.imgs];
      const meta = await sharp(bytes).metadata();
      const image = byPair.get(record.pair_id);
      expect(image).toMatchObject({
        pmid: String(record.pmid),
        fileName: record.imgs,
        caption: record.fig_caption,
        mentions: record.in_text_mention.map((m) => m.tokens),
        source: 'IMPORT',
        width: meta.width,
        height: meta.height,
        mimeType: `image/${meta.format}`,
        byteSize: bytes.length,
        contentHash: sha256(bytes),
      });
      expect(sorted(image.modalities)).toEqual(expectedModalities(record.domain));
      const file = await download(image.url);
      expect(file.status).toBe(200);
      expect(file.bytes.equals(bytes)).toBe(true);
    }
    const none = await gql(app.graphqlUrl, lab.keys.VIEWER, `{ images(first: 100, filter: { hasBytes: false }) { totalCount } }`);
    expect(none.data!.images.totalCount).toBe(0);
  });

  it('re-imports records with the same files without storing anything twice', async () => {
    const before = await counts(app);
    const res = await importRecords(app, lab.keys.CURATOR, { records: figureRecords, images: SHARED_IMAGE_NAMES.map(() => null) }, files(SHARED_IMAGE_NAMES, 'input.images'));
    expect(res.data!.importRecords.recordErrors).toEqual([]);
    expect(res.data!.importRecords.summary).toMatchObject({ imagesCreated: 0, imagesUpdated: figureRecords.length, unmatchedFiles: [] });
    expect(await counts(app)).toEqual(before);
  });

  it('refuses a record whose bytes already back another image', async () => {
    const before = await counts(app);
    const thief = { ...figureRecords[0], pair_id: 'other_pair', imgs: 'renamed.png' };
    const res = await importRecords(app, lab.keys.CURATOR, { records: [thief], images: [null] }, [{ path: 'input.images.0', name: 'renamed.png', bytes: images[figureRecords[0].imgs] }]);
    expect(res.data!.importRecords.summary).toBeNull();
    expect(res.data!.importRecords.recordErrors).toEqual([{ index: 0, recordId: null, field: 'imgs', message: expect.stringContaining(figureRecords[0].pair_id) }]);
    expect(await counts(app)).toEqual(before);
  });

  it('refuses other bytes for an image that already has bytes: stored images do not change', async () => {
    const before = await counts(app);
    const swapped = { ...figureRecords[0], imgs: 'redrawn.png' };
    const redrawn = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#123456' } }).png().toBuffer();
    const stored = await app.ds.query(`SELECT content_hash FROM images WHERE pair_id = $1`, [swapped.pair_id]);
    const res = await importRecords(app, lab.keys.CURATOR, { records: [swapped], images: [null] }, [{ path: 'input.images.0', name: 'redrawn.png', bytes: redrawn }]);
    expect(res.data!.importRecords.summary).toBeNull();
    expect(res.data!.importRecords.recordErrors).toEqual([{ index: 0, recordId: null, field: 'imgs', message: expect.stringContaining('already has other bytes') }]);
    expect(await counts(app)).toEqual(before);
    expect(await app.ds.query(`SELECT content_hash FROM images WHERE pair_id = $1`, [swapped.pair_id])).toEqual(stored);
  });
});

describe('a large import', () => {
  let app: TestApp;
  let lab: TestProject;
  // Past one statement's 65,535 parameters for both images (16 a row) and demonstrations (8 a row).
  const COUNT = 9000;
  const records = Array.from({ length: COUNT }, (_, i) => ({
    id: i,
    pair_id: `bulk_${i}`,
    pmid: String(40000000 + i),
    fig_caption: `Bulk figure ${i}`,
    domain: { ct_scan: i % 2 === 0, mri: i % 2 === 1 },
    conversations: [
      { from: 'human', value: `Question ${i}?` },
      { from: 'gpt', value: `Answer ${i}.` },
    ],
  }));

  beforeAll(async () => {
    app = await startTestApp();
    lab = await createTestProject(app, 'bulk-lab');
  });
  afterAll(() => app.stop());

  it('imports thousands of records in one transaction, and re-imports them as updates', async () => {
    const first = await app.services.recordsImport.import(lab.ctx(), records, [], { createDemonstrations: true });
    expect(first).toMatchObject({ recordErrors: [], imagesCreated: COUNT, imagesUpdated: 0, demonstrationsCreated: COUNT });
    const again = await app.services.recordsImport.import(lab.ctx(), records, [], { createDemonstrations: true });
    expect(again).toMatchObject({ recordErrors: [], imagesCreated: 0, imagesUpdated: COUNT, demonstrationsCreated: 0 });
    const res = await gql(app.graphqlUrl, lab.keys.VIEWER, '{ images(first: 1) { totalCount } ct: demonstrations(first: 1, filter: { modalities: [CT] }) { totalCount } }');
    expect(res.data).toEqual({ images: { totalCount: COUNT }, ct: { totalCount: COUNT / 2 } });
  });
});

describe('bad imports write nothing', () => {
  let app: TestApp;
  let lab: TestProject;
  const demonstrations = readDemonstrations();
  const good = (i: number): Record<string, any> => ({ ...demonstrations[i] });
  const jpeg = readSharedImage('synpic32933.jpg');

  beforeAll(async () => {
    app = await startTestApp();
    lab = await createTestProject(app, 'bad-import-lab');
    // Something to leave untouched.
    const seed = await importRecords(app, lab.keys.CURATOR, { records: [good(0)] });
    expect(seed.data!.importRecords.summary).toMatchObject({ imagesCreated: 1, demonstrationsCreated: 1 });
  });
  afterAll(() => app.stop());

  it('reports every bad record by index and field, and imports none of the good ones', async () => {
    const { pair_id: _dropped, ...missingPairId } = good(2);
    const conversations = good(5).conversations as { from: string; value: string }[];
    const bad: { record: Record<string, unknown>; field: RegExp }[] = [
      { record: missingPairId, field: /^pair_id$/ },
      { record: { ...good(3), magnification: '40x' }, field: /^magnification$/ },
      { record: { ...good(4), domain: { ...good(4).domain, ct_scan: 'yes' } }, field: /^domain\.ct_scan$/ },
      { record: { ...good(11), domain: { ...good(11).domain, xray: true } }, field: /^domain\.xray$/ },
      { record: { ...good(5), conversations: [conversations[0], { ...conversations[1], from: 'human' }, ...conversations.slice(2)] }, field: /^conversations\.[12]\.from$/ },
      { record: { ...good(12), conversations: [{ from: 'gpt', value: 'An answer first.' }, ...good(12).conversations] }, field: /^conversations\.0\.from$/ },
      { record: { ...good(13), conversations: [...good(13).conversations, { from: 'human', value: 'A last question?' }] }, field: /^conversations$/ },
      { record: { ...good(6), pmid: { id: good(6).pmid } }, field: /^pmid$/ },
      { record: { ...good(7), pair_id: good(1).pair_id, id: 9999 }, field: /^pair_id$/ },
      { record: { ...good(8), imgs: 'corrupt.jpg' }, field: /^imgs$/ },
    ];
    // Good records before and after the bad ones.
    const submitted: Record<string, unknown>[] = [good(1)];
    const badIndexes: number[] = [];
    for (const b of bad) {
      badIndexes.push(submitted.length);
      submitted.push(b.record);
    }
    submitted.push(good(9), good(10));

    const before = await counts(app);
    const res = await importRecords(app, lab.keys.CURATOR, { records: submitted, images: [null, null] }, [
      { path: 'input.images.0', name: 'corrupt.jpg', bytes: jpeg.subarray(0, Math.floor(jpeg.length / 2)) },
      { path: 'input.images.1', name: good(9).imgs, bytes: readSharedImage('xy_chromosome.jpg') },
    ]);
    expect(res.errors).toBeUndefined();
    const payload = res.data!.importRecords;
    expect(payload.summary).toBeNull();
    expect(payload.userErrors).toEqual([]);
    const errorIndexes = [...new Set(payload.recordErrors.map((e: any) => e.index))];
    expect(errorIndexes).toEqual(badIndexes);
    bad.forEach((b, i) => {
      const errors = payload.recordErrors.filter((e: any) => e.index === badIndexes[i]);
      expect(errors.length).toBeGreaterThan(0);
      for (const e of errors) {
        expect({ index: e.index, field: e.field }).toEqual({ index: badIndexes[i], field: expect.stringMatching(b.field) });
        expect(e.message.length).toBeGreaterThan(0);
        expect(e.recordId).toBe(String((b.record as { id?: unknown }).id));
      }
    });
    // The answer made a question: turn 1 and the question after it are both unanswered.
    expect(payload.recordErrors.filter((e: any) => e.index === badIndexes[4]).map((e: any) => e.field)).toEqual(['conversations.1.from', 'conversations.2.from']);
    expect(await counts(app)).toEqual(before);
    const pairs = await app.ds.query(`SELECT pair_id FROM images WHERE pair_id = ANY($1)`, [[good(1).pair_id, good(9).pair_id, good(10).pair_id]]);
    expect(pairs).toEqual([]);
  });

  it.each([
    ['an object', { pair_id: 'x', pmid: '1' }],
    ['a string', 'not records'],
    ['a number', 42],
  ])('answers INVALID when records is %s', async (_label, records) => {
    const before = await counts(app);
    const res = await importRecords(app, lab.keys.CURATOR, { records });
    expect(res.errors).toBeUndefined();
    expect(res.data!.importRecords).toEqual({ summary: null, recordErrors: [], userErrors: [{ code: 'INVALID', field: ['records'], message: expect.any(String) }] });
    expect(await counts(app)).toEqual(before);
  });

  it('answers INVALID for an empty records array', async () => {
    const res = await importRecords(app, lab.keys.CURATOR, { records: [] });
    expect(res.data!.importRecords.userErrors).toEqual([{ code: 'INVALID', field: ['records'], message: expect.any(String) }]);
  });

  it('answers INVALID for malformed JSON in recordsFile', async () => {
    const before = await counts(app);
    const text = JSON.stringify([good(1), good(2)]);
    const broken = Buffer.from(text.slice(0, text.length - 20), 'utf8');
    const res = await importRecords(app, lab.keys.CURATOR, { recordsFile: null }, [{ path: 'input.recordsFile', name: 'records.json', bytes: broken, type: 'application/json' }]);
    expect(res.errors).toBeUndefined();
    expect(res.data!.importRecords).toEqual({ summary: null, recordErrors: [], userErrors: [{ code: 'INVALID', field: ['recordsFile'], message: expect.stringMatching(/JSON/) }] });
    expect(await counts(app)).toEqual(before);
  });

  it('answers INVALID for both records and recordsFile, or neither', async () => {
    const both = await importRecords(app, lab.keys.CURATOR, { records: [good(1)], recordsFile: null }, [
      { path: 'input.recordsFile', name: 'records.json', bytes: Buffer.from(JSON.stringify([good(2)])), type: 'application/json' },
    ]);
    expect(both.data!.importRecords.userErrors).toEqual([{ code: 'INVALID', field: ['records'], message: expect.any(String) }]);
    const neither = await importRecords(app, lab.keys.CURATOR, {});
    expect(neither.data!.importRecords.userErrors).toEqual([{ code: 'INVALID', field: ['records'], message: expect.any(String) }]);
  });

  it('answers INVALID for two uploaded files with the same name', async () => {
    const before = await counts(app);
    const record = { ...good(1) };
    const res = await importRecords(app, lab.keys.CURATOR, { records: [record], images: [null, null] }, [
      { path: 'input.images.0', name: record.imgs, bytes: readSharedImage('xy_chromosome.jpg') },
      { path: 'input.images.1', name: record.imgs, bytes: readSharedImage('synpic42202.jpg') },
    ]);
    expect(res.errors).toBeUndefined();
    expect(res.data!.importRecords).toEqual({ summary: null, recordErrors: [], userErrors: [{ code: 'INVALID', field: ['input', 'images'], message: expect.stringContaining(record.imgs) }] });
    expect(await counts(app)).toEqual(before);
  });

  it('refuses two records with the same image bytes', async () => {
    const before = await counts(app);
    const a: Record<string, any> = { ...good(1), imgs: 'a.jpg' };
    const b: Record<string, any> = { ...good(2), imgs: 'b.jpg' };
    const res = await importRecords(app, lab.keys.CURATOR, { records: [a, b], images: [null, null] }, [
      { path: 'input.images.0', name: 'a.jpg', bytes: jpeg },
      { path: 'input.images.1', name: 'b.jpg', bytes: jpeg },
    ]);
    expect(res.data!.importRecords.summary).toBeNull();
    expect(res.data!.importRecords.recordErrors).toEqual([{ index: 1, recordId: String(b.id), field: 'imgs', message: expect.any(String) }]);
    expect(await counts(app)).toEqual(before);
  });

  it('refuses imports from VIEWER and CLINICIAN keys', async () => {
    const before = await counts(app);
    for (const role of ['VIEWER', 'CLINICIAN'] as const) {
      const res = await importRecords(app, lab.keys[role], { records: [good(1)] });
      expect(errorCodes(res)).toEqual(['FORBIDDEN']);
    }
    expect(await counts(app)).toEqual(before);
  });
});

describe('the CLI import', () => {
  let app: TestApp;
  let lab: TestProject;

  beforeAll(async () => {
    app = await startTestApp();
    lab = await createTestProject(app, 'cli-lab');
  });
  afterAll(() => app.stop());

  it('imports the demonstrations file into the project named by slug', async () => {
    const records = readDemonstrations();
    const distinctPairs = new Set(records.map((r) => r.pair_id)).size;
    const databaseUrl = new URL(process.env.DATABASE_URL!);
    databaseUrl.pathname = `/${app.databaseName}`;
    const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      execFile(
        'npx',
        ['ts-node', '--transpile-only', 'src/main.ts', 'import', '--project', lab.slug, '--file', DEMONSTRATIONS_FILE],
        { cwd: PROJECT_ROOT, env: { ...process.env, DATABASE_URL: databaseUrl.toString(), LOG_LEVEL: 'error' }, timeout: 90_000 },
        (error, out, err) => resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout: out, stderr: err }),
      );
    });
    const problems = stderr
      .split('\n')
      .filter((line) => line.trim() && !/^npm warn/i.test(line))
      .join('\n');
    expect({ code, problems, stdout: code ? stdout : '' }).toEqual({ code: 0, problems: '', stdout: '' });
    const result = JSON.parse(stdout.slice(stdout.indexOf('{')));
    expect(result).toMatchObject({ recordErrors: [], imagesCreated: distinctPairs, demonstrationsCreated: records.length });

    const res = await gql(app.graphqlUrl, lab.keys.VIEWER, `{ demonstrations(first: 100) { totalCount edges { node { externalId image { pairId } } } } }`);
    expect(res.errors).toBeUndefined();
    expect(res.data!.demonstrations.totalCount).toBe(records.length);
    expect(sorted(res.data!.demonstrations.edges.map((e: any) => e.node.externalId))).toEqual(sorted(records.map((r) => String(r.id))));
    const ct = await gql(app.graphqlUrl, lab.keys.VIEWER, `{ demonstrations(first: 100, filter: { modalities: [CT] }) { totalCount } }`);
    expect(ct.data!.demonstrations.totalCount).toBe(records.filter((r) => r.domain?.ct_scan === true).length);
  }, 120_000);
});
