import sharp from 'sharp';
import * as ort from 'onnxruntime-node';
import { decodeRgb, imagePixels, preprocessingKey, selectorText } from '../../src/modules/selectors/selector-inputs';
import { SELECTOR_CONTRACT, SelectorManifest, SelectorManifestInput, selectorManifestSchema } from '../../src/modules/selectors/selector-manifest';
import { buildReferenceSelector } from '../../src/modules/selectors/reference-selector';
import { loadTokenizer } from '../../src/platform/tokenizer';
import { fromGlobalId } from '../../src/platform/ids';
import { readSharedImage } from '../support/shared-data';
import { createTestProject, startTestApp, TestApp, TestProject } from '../support/test-app';
import { gql, gqlUpload } from '../support/graphql-client';
import { waitForRun } from '../support/pipeline-fixture';
import { referenceSelectorUpload, registerSelector, seedCandidates, START_SCORING } from '../support/scoring-fixture';

jest.setTimeout(60_000);

/**
 * Selector preprocessing that a lab can reproduce (issue 9 item 14): alpha and EXIF orientation are
 * manifest options whose defaults are PIL's (`Image.open(f).convert('RGB')`: alpha dropped, stored
 * colour kept; orientation ignored). Images are built here from raw pixels; the manifest's size is
 * the image's, so no resampling blurs the comparison and every expected value is exact.
 */

const CLIP_MEAN: [number, number, number] = [0.48145466, 0.4578275, 0.40821073];
const CLIP_STD: [number, number, number] = [0.26862954, 0.26130258, 0.27577711];

/** A validated manifest, then given the tiny test image's side (the schema asks real models for at least 8). */
function manifest(image: Partial<SelectorManifestInput['image']> = {}, size = 4): SelectorManifest {
  const parsed = selectorManifestSchema.parse({
    contract: SELECTOR_CONTRACT,
    image: { size: 8, resize: 'fill', mean: CLIP_MEAN, std: CLIP_STD, ...image },
    text: { maxLength: 16, fields: ['caption'], rounds: 'all' },
    score: 'logit',
  });
  return { ...parsed, image: { ...parsed.image, size } };
}

/** `pixel_values` of one image as the contract defines them: channel-first, ((v / 255) − mean) / std. */
function expectedTensor(rgb: [number, number, number][]): Float32Array {
  const plane = rgb.length;
  const out = new Float32Array(3 * plane);
  rgb.forEach((pixel, i) => pixel.forEach((v, c) => (out[c * plane + i] = (v / 255 - CLIP_MEAN[c]) / CLIP_STD[c])));
  return out;
}

function expectTensor(actual: Float32Array, expected: Float32Array): void {
  expect(actual.length).toBe(expected.length);
  const worst = Math.max(...Array.from(actual, (v, i) => Math.abs(v - expected[i])));
  // float32 rounding of the same float64 expression; one 8-bit step is 1 / (255 · 0.27) ≈ 0.0146.
  expect(worst).toBeLessThan(1e-6);
}

/** A 4×4 figure with known colours and every kind of alpha: opaque, fully transparent, partly transparent. */
const RGBA_4x4: [number, number, number, number][] = [
  [255, 0, 0, 255], [0, 255, 0, 0], [0, 0, 255, 128], [200, 100, 50, 64],
  [10, 20, 30, 255], [10, 20, 30, 0], [250, 250, 250, 1], [0, 0, 0, 0],
  [128, 64, 32, 200], [255, 255, 255, 0], [1, 2, 3, 254], [100, 150, 200, 128],
  [77, 77, 77, 255], [0, 128, 255, 127], [90, 80, 70, 0], [255, 255, 0, 50],
];

const rgbaPng = (pixels: number[][], width: number, height: number) =>
  sharp(Buffer.from(pixels.flat()), { raw: { width, height, channels: 4 } }).png().toBuffer();

describe('selector preprocessing: alpha', () => {
  let png: Buffer;
  beforeAll(async () => {
    png = await rgbaPng(RGBA_4x4, 4, 4);
    expect((await sharp(png).metadata()).channels).toBe(4);
  });

  it('drops alpha by default and keeps every stored colour, as PIL convert("RGB")', async () => {
    const stored = RGBA_4x4.map(([r, g, b]) => [r, g, b] as [number, number, number]);
    expectTensor(await imagePixels(png, manifest()), expectedTensor(stored));
    expectTensor(await imagePixels(png, manifest({ alpha: 'drop' })), expectedTensor(stored));
  });

  it('flattens onto the manifest background: floor((a·c + (255 − a)·bg) / 255)', async () => {
    const onBlueGreen: [number, number, number][] = [
      [255, 0, 0], [0, 128, 255], [0, 63, 255], [50, 120, 203],
      [10, 20, 30], [0, 128, 255], [0, 128, 254], [0, 128, 255],
      [100, 77, 80], [0, 128, 255], [0, 2, 3], [50, 139, 227],
      [77, 77, 77], [0, 128, 255], [0, 128, 255], [50, 152, 205],
    ];
    expectTensor(await imagePixels(png, manifest({ alpha: 'flatten', alphaBackground: [0, 128, 255] })), expectedTensor(onBlueGreen));
  });

  it('flattens onto white when no background is named', async () => {
    const onWhite: [number, number, number][] = [
      [255, 0, 0], [255, 255, 255], [127, 127, 255], [241, 216, 203],
      [10, 20, 30], [255, 255, 255], [254, 254, 254], [255, 255, 255],
      [155, 105, 80], [255, 255, 255], [1, 2, 3], [177, 202, 227],
      [77, 77, 77], [128, 191, 255], [255, 255, 255], [255, 255, 205],
    ];
    expectTensor(await imagePixels(png, manifest({ alpha: 'flatten' })), expectedTensor(onWhite));
  });

  it('pins the normalisation itself: white and black under CLIP mean and std', async () => {
    const pixels = await imagePixels(png, manifest());
    // Pixel 0 is opaque red: R = (1 − 0.48145466) / 0.26862954, G and B = (0 − mean) / std.
    expect(pixels[0]).toBeCloseTo(1.930336254, 6);
    expect(pixels[16]).toBeCloseTo(-1.752097128, 6);
    expect(pixels[32]).toBeCloseTo(-1.480219769, 6);
  });

  it('keeps the stored colour under alpha 0 through a resize too (the resize must not run on premultiplied pixels)', async () => {
    // Left half transparent red, right half opaque green; resized 32 → 4. Dropping alpha must give red
    // on the left (Lanczos rings a little at the edge), where a premultiplied resize gives black.
    const pixels = Array.from({ length: 32 * 32 }, (_, i) => (i % 32 < 16 ? [250, 10, 10, 0] : [10, 250, 10, 255]));
    const halves = await rgbaPng(pixels, 32, 32);
    const tensor = await imagePixels(halves, manifest({}, 4));
    const value = (c: number, i: number) => Math.round((tensor[c * 16 + i] * CLIP_STD[c] + CLIP_MEAN[c]) * 255);
    expect(value(0, 0)).toBeGreaterThan(240);
    expect(value(1, 0)).toBeLessThan(30);
    expect(value(0, 3)).toBeLessThan(30);
    expect(value(1, 3)).toBeGreaterThan(240);
  });

  it('reads a real RGBA figure as its stored RGB when alpha is dropped, also where alpha is 0', async () => {
    const original = readSharedImage('bio_patch.png');
    const raw = await sharp(original).raw().toBuffer({ resolveWithObject: true });
    expect(raw.info.channels).toBe(4);
    const { width, height } = raw.info;
    // bio_patch.png is RGBA but fully opaque: make its left half transparent, keeping the stored colour.
    const holed = Buffer.from(raw.data);
    for (let y = 0; y < height; y++) for (let x = 0; x < width / 2; x++) holed[(y * width + x) * 4 + 3] = 0;
    const transparent = await sharp(holed, { raw: { width, height, channels: 4 } }).png().toBuffer();

    const storedRgb = Buffer.alloc(width * height * 3);
    for (let i = 0; i < width * height; i++) raw.data.copy(storedRgb, i * 3, i * 4, i * 4 + 3);
    for (const bytes of [original, transparent]) {
      const decoded = await decodeRgb(bytes, manifest().image);
      expect({ width: decoded.width, height: decoded.height }).toEqual({ width, height });
      expect(decoded.data.equals(storedRgb)).toBe(true);
    }
    // A few pixels under alpha 0 keep their colour in pixel_values at full size (no resampling).
    const full = manifest({ resize: 'fill' }, 8);
    const at = (t: Float32Array, x: number, y: number, c: number) => Math.round((t[c * 64 + y * 8 + x] * CLIP_STD[c] + CLIP_MEAN[c]) * 255);
    const crop = async (bytes: Buffer) => sharp(bytes).extract({ left: 10, top: 10, width: 8, height: 8 }).png().toBuffer();
    const [opaqueCrop, transparentCrop] = [await imagePixels(await crop(original), full), await imagePixels(await crop(transparent), full)];
    for (const [x, y] of [[0, 0], [3, 5], [7, 7]]) {
      for (let c = 0; c < 3; c++) {
        expect(at(transparentCrop, x, y, c)).toBe(raw.data[((10 + y) * width + 10 + x) * 4 + c]);
        expect(at(transparentCrop, x, y, c)).toBe(at(opaqueCrop, x, y, c));
      }
    }
    // Flattening the same transparent half makes it the background: it really was transparent.
    const flattened = await decodeRgb(transparent, manifest({ alpha: 'flatten', alphaBackground: [0, 0, 0] }).image);
    expect([...flattened.data.subarray(0, 6)]).toEqual([0, 0, 0, 0, 0, 0]);
  });
});

describe('selector preprocessing: geometry', () => {
  // Columns numbered in red (10, 20, …), rows in green: where each pixel lands is exact when the scale is 1.
  const grid = (width: number, height: number) => {
    const pixels: [number, number, number][] = [];
    for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) pixels.push([10 * (x + 1), 10 * (y + 1), 7]);
    return { pixels, png: sharp(Buffer.from(pixels.flat()), { raw: { width, height, channels: 3 } }).png().toBuffer() };
  };

  it('crops cover from left = (w − size + 1) // 2, which is not torchvision’s round((w − size) / 2)', async () => {
    const { pixels, png } = grid(8, 3);
    const kept = pixels.filter((_, i) => [3, 4, 5].includes(i % 8)); // (8 − 3 + 1) // 2 = 3; round(2.5) would be 2
    expectTensor(await imagePixels(await png, manifest({ resize: 'cover' }, 3)), expectedTensor(kept));
  });

  it('letterboxes contain on black at top = (size − h) // 2', async () => {
    const { pixels, png } = grid(8, 3);
    const black: [number, number, number] = [0, 0, 0];
    const boxed = [...Array(16).fill(black), ...pixels, ...Array(24).fill(black)]; // rows 2-4 of 8
    expectTensor(await imagePixels(await png, manifest({ resize: 'contain' }, 8)), expectedTensor(boxed));
  });

  it('letterboxes a strip thinner than one pixel at the target size as one row, not an error', async () => {
    const strip = await sharp({ create: { width: 4000, height: 4, channels: 3, background: '#ff0000' } }).png().toBuffer();
    const tensor = await imagePixels(strip, manifest({ resize: 'contain' }, 224));
    const red = (i: number) => Math.round((tensor[i] * CLIP_STD[0] + CLIP_MEAN[0]) * 255);
    expect(red(111 * 224 + 100)).toBe(255); // the one row, at top = (224 − 1) // 2
    expect(red(110 * 224 + 100) + 0).toBe(0); // black above it
  });
});

describe('selector preprocessing: EXIF orientation', () => {
  // Stored 2×2: A B / C D.
  const A = [200, 0, 0], B = [0, 200, 0], C = [0, 0, 200], D = [90, 90, 90];
  const stored = [A, B, C, D] as [number, number, number][];
  const withOrientation = (orientation: number) =>
    sharp(Buffer.from([A, B, C, D].flat()), { raw: { width: 2, height: 2, channels: 3 } }).png().withMetadata({ orientation }).toBuffer();

  it.each([
    // As PIL's ImageOps.exif_transpose turns them.
    [2, [B, A, D, C]], // mirrored
    [3, [D, C, B, A]], // 180°
    [6, [C, A, D, B]], // 90° clockwise
    [8, [B, D, A, C]], // 90° counter-clockwise
  ])('ignores orientation %i by default and applies it when asked', async (orientation, turned) => {
    const png = await withOrientation(orientation as number);
    expect((await sharp(png).metadata()).orientation).toBe(orientation);
    expectTensor(await imagePixels(png, manifest({}, 2)), expectedTensor(stored));
    expectTensor(await imagePixels(png, manifest({ exifOrientation: 'ignore' }, 2)), expectedTensor(stored));
    expectTensor(await imagePixels(png, manifest({ exifOrientation: 'apply' }, 2)), expectedTensor(turned as [number, number, number][]));
  });

  it('turns a JPEG photograph upright only with exifOrientation: apply', async () => {
    const jpeg = await sharp({ create: { width: 8, height: 4, channels: 3, background: '#406080' } }).jpeg().withMetadata({ orientation: 6 }).toBuffer();
    expect(await decodeRgb(jpeg, manifest().image)).toMatchObject({ width: 8, height: 4 });
    expect(await decodeRgb(jpeg, manifest({ exifOrientation: 'apply' }).image)).toMatchObject({ width: 4, height: 8 });
  });
});

describe('selector preprocessing: colour', () => {
  it('ignores an embedded ICC profile, as PIL does, and reads the stored values', async () => {
    const source = Buffer.from(Array.from({ length: 4 * 4 * 3 }, (_, i) => (i * 53) % 256));
    const p3 = await sharp(source, { raw: { width: 4, height: 4, channels: 3 } }).withIccProfile('p3').png().toBuffer();
    expect((await sharp(p3).metadata()).icc).toBeDefined();
    const stored = await sharp(p3, { ignoreIcc: true }).raw().toBuffer();
    const colourManaged = await sharp(p3).toColourspace('srgb').raw().toBuffer();
    expect(colourManaged.equals(stored)).toBe(false); // the profile would change the values
    expect((await decodeRgb(p3, manifest().image)).data.equals(stored)).toBe(true);
  });

  it('repeats greyscale in R, G and B', async () => {
    const grey = await sharp(Buffer.from([0, 60, 120, 255]), { raw: { width: 2, height: 2, channels: 1 } }).png().toBuffer();
    expectTensor(await imagePixels(grey, manifest({}, 2)), expectedTensor([[0, 0, 0], [60, 60, 60], [120, 120, 120], [255, 255, 255]]));
  });
});

describe('selector manifest: alpha and EXIF options', () => {
  const old = {
    contract: SELECTOR_CONTRACT,
    image: { size: 224, resize: 'cover', mean: CLIP_MEAN, std: CLIP_STD },
    text: { maxLength: 256, fields: ['caption', 'question', 'answer'], rounds: 'all', separator: ' ' },
    score: 'logit',
  };

  it('validates a manifest written before the options, with the PIL defaults', () => {
    const parsed = selectorManifestSchema.parse(old);
    expect(parsed.image).toEqual({ ...old.image, alpha: 'drop', exifOrientation: 'ignore' });
  });

  it.each([
    ['an unknown alpha mode', { alpha: 'premultiply' }, 'image.alpha'],
    ['an unknown orientation mode', { exifOrientation: 'auto' }, 'image.exifOrientation'],
    ['a background out of 0-255', { alpha: 'flatten', alphaBackground: [0, 0, 256] }, 'image.alphaBackground'],
    ['a background that is not RGB', { alpha: 'flatten', alphaBackground: '#fff' }, 'image.alphaBackground'],
    ['a background without flatten', { alphaBackground: [0, 0, 0] }, 'image.alphaBackground'],
  ])('rejects %s', (_label, image, path) => {
    const parsed = selectorManifestSchema.safeParse({ ...old, image: { ...old.image, ...image } });
    expect(parsed.success).toBe(false);
    expect(parsed.error!.issues.some((i) => i.path.join('.').startsWith(path))).toBe(true);
  });

  it('keys cached pixels by every option that changes them', () => {
    const keys = [
      manifest(),
      manifest({ alpha: 'flatten' }),
      manifest({ alpha: 'flatten', alphaBackground: [0, 0, 0] }),
      manifest({ exifOrientation: 'apply' }),
    ].map(preprocessingKey);
    expect(new Set(keys).size).toBe(keys.length);
    expect(preprocessingKey(manifest({ alpha: 'flatten' }))).toBe(preprocessingKey(manifest({ alpha: 'flatten', alphaBackground: [255, 255, 255] })));
  });
});

describe('selector preprocessing through registration and scoring runs', () => {
  let app: TestApp;
  let lab: TestProject;
  let imageBytes: Buffer;
  let candidateIds: string[];
  const reference = referenceSelectorUpload();
  const referenceManifest = JSON.parse(reference.manifest.toString());
  const withImage = (image: Record<string, unknown>, drop: string[] = []) => {
    const written = { ...referenceManifest, image: { ...referenceManifest.image, ...image } };
    for (const key of drop) delete written.image[key];
    return Buffer.from(JSON.stringify(written));
  };
  const selectorCount = async () => (await app.ds.query(`SELECT count(*)::int AS n FROM selector_models WHERE project_id = $1`, [lab.id]))[0].n;

  beforeAll(async () => {
    app = await startTestApp({ SCORING_BATCH_SIZE: '4' }, { worker: true });
    lab = await createTestProject(app, 'preprocessing');
    // A real figure, its left third fully transparent and its middle third partly: what PMC PNGs look like.
    const raw = await sharp(readSharedImage('bio_patch.png')).raw().toBuffer({ resolveWithObject: true });
    const { width, height } = raw.info;
    for (let y = 0; y < height; y++) for (let x = 0; x < (2 * width) / 3; x++) raw.data[(y * width + x) * 4 + 3] = x < width / 3 ? 0 : Math.round((255 * x) / width);
    imageBytes = await sharp(raw.data, { raw: { width, height, channels: 4 } }).png().toBuffer();
    const uploaded = await gqlUpload(
      app.graphqlUrl,
      lab.keys.CURATOR,
      `mutation($input: UploadImageInput!) { uploadImage(input: $input) { image { id } userErrors { code message } } }`,
      { input: { file: null, metadata: { caption: 'A patch of tissue on a transparent background', modalities: ['HISTOLOGY'] } } },
      [{ path: 'input.file', name: 'transparent_patch.png', bytes: imageBytes }],
    );
    expect(uploaded.data!.uploadImage.userErrors).toEqual([]);
    candidateIds = await seedCandidates(app, lab, [fromGlobalId(uploaded.data!.uploadImage.image.id)!.id], 3);
  });

  afterAll(async () => {
    await app?.stop();
  });

  it.each([
    ['an unknown alpha mode', { alpha: 'premultiply' }, /image\.alpha/],
    ['an unknown orientation mode', { exifOrientation: 'auto' }, /image\.exifOrientation/],
    ['a background out of range', { alpha: 'flatten', alphaBackground: [0, 0, 300] }, /image\.alphaBackground/],
    ['a background without flatten', { alphaBackground: [0, 0, 0] }, /alphaBackground only applies with alpha: "flatten"/],
  ])('refuses a manifest with %s as a userErrors entry on the manifest, storing nothing', async (_label, image, message) => {
    const before = await selectorCount();
    const res = await registerSelector(app, lab.keys.CURATOR, 'bad-manifest', { ...reference, manifest: withImage(image) });
    expect(res.errors).toBeUndefined();
    expect(res.data!.registerSelectorModel.selectorModel).toBeNull();
    expect(res.data!.registerSelectorModel.userErrors).toEqual([{ field: ['input', 'manifest'], code: 'INVALID', message: expect.stringMatching(message) }]);
    expect(await selectorCount()).toBe(before);
  });

  it('registers a manifest written before the options with the PIL defaults, and scores each selector with its own alpha choice', async () => {
    const old = await registerSelector(app, lab.keys.CURATOR, 'written-before', { ...reference, manifest: withImage({}, ['alpha', 'exifOrientation']) });
    expect(old.data!.registerSelectorModel.userErrors).toEqual([]);
    expect(old.data!.registerSelectorModel.selectorModel.manifest.image).toMatchObject({ alpha: 'drop', exifOrientation: 'ignore' });
    const flatten = await registerSelector(app, lab.keys.CURATOR, 'flatten-black', { ...reference, manifest: withImage({ alpha: 'flatten', alphaBackground: [0, 0, 0] }) });
    expect(flatten.data!.registerSelectorModel.userErrors).toEqual([]);

    // Both run in the same worker, one after the other: cached pixels must not cross from one to the other.
    const scores = new Map<string, Map<string, number>>();
    for (const registered of [old, flatten]) {
      const selector = registered.data!.registerSelectorModel.selectorModel;
      const started = await gql(app.graphqlUrl, lab.keys.CURATOR, START_SCORING, { input: { selectorModelId: selector.id } });
      expect(started.data!.startScoringRun.userErrors).toEqual([]);
      expect(await waitForRun(app, lab.keys.VIEWER, started.data!.startScoringRun.run.id)).toMatchObject({ status: 'SUCCEEDED', done: candidateIds.length });
      const rows: { candidate_id: string; value: number }[] = await app.ds.query(`SELECT candidate_id, value FROM scores WHERE selector_model_id = $1`, [fromGlobalId(selector.id)!.id]);
      scores.set(selector.name, new Map(rows.map((r) => [r.candidate_id, r.value])));
    }

    const files = buildReferenceSelector();
    const session = await ort.InferenceSession.create(files.model);
    const tokenizer = loadTokenizer(files.tokenizer);
    const [candidate] = await app.ds.query(`SELECT c.id, c.rounds, i.caption, i.mentions FROM candidates c JOIN images i ON i.id = c.image_id WHERE c.id = $1`, [candidateIds[0]]);
    const direct = async (manifest: SelectorManifest) => {
      const { size } = manifest.image;
      const L = manifest.text.maxLength;
      const { inputIds, attentionMask } = tokenizer.encodeBatch([selectorText({ caption: candidate.caption, mentions: candidate.mentions, rounds: candidate.rounds }, manifest)], L);
      const out = await session.run({
        pixel_values: new ort.Tensor('float32', await imagePixels(imageBytes, manifest), [1, 3, size, size]),
        input_ids: new ort.Tensor('int64', inputIds, [1, L]),
        attention_mask: new ort.Tensor('int64', attentionMask, [1, L]),
      });
      return (out[session.outputNames[0]].data as Float32Array)[0];
    };
    const dropScore = await direct(selectorManifestSchema.parse(old.data!.registerSelectorModel.selectorModel.manifest));
    const flattenScore = await direct(selectorManifestSchema.parse(flatten.data!.registerSelectorModel.selectorModel.manifest));
    await session.release();
    expect(scores.get('written-before')!.get(candidateIds[0])).toBeCloseTo(dropScore, 5);
    expect(scores.get('flatten-black')!.get(candidateIds[0])).toBeCloseTo(flattenScore, 5);
    expect(Math.abs(dropScore - flattenScore)).toBeGreaterThan(1e-4);
  });
});
