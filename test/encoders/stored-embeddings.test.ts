/**
 * Stored embeddings (issue 11): computed once per (encoder, image) and (encoder, text), batched;
 * asking again computes nothing, a row does not depend on its batch companions, an image without
 * bytes is reported rather than embedded, and another project's context reads nothing.
 */
import { createTestProject, startTestApp, TestApp, TestProject } from '../support/test-app';
import { syntheticFigure } from '../support/training-fixture';
import { buildReferenceEncoder } from '../../src/modules/encoders/reference-encoder';
import { EncoderModel } from '../../src/modules/encoders/encoder-model.entity';
import { textKey } from '../../src/modules/encoders/encoders.service';
import { selectorManifestOf } from '../../src/modules/encoders/encoder-manifest';
import { imagePixels } from '../../src/modules/selectors/selector-inputs';

jest.setTimeout(60_000);

describe('stored embeddings', () => {
  let app: TestApp;
  let lab: TestProject;
  let other: TestProject;
  let encoder: EncoderModel;
  const imageIds: string[] = [];

  beforeAll(async () => {
    app = await startTestApp();
    lab = await createTestProject(app, 'embeddings-lab');
    other = await createTestProject(app, 'embeddings-other');
    for (let i = 1; i <= 5; i++) imageIds.push((await app.services.images.upload(lab.ctx(), await syntheticFigure(i), `f${i}.png`, { caption: `Figure ${i}` })).id);
    const files = buildReferenceEncoder();
    encoder = await app.services.encoders.register(lab.ctx(), { name: 'reference', files: { model: files.model, tokenizer: Buffer.from(files.tokenizer), manifest: Buffer.from(JSON.stringify(files.manifest)) } });
  });
  afterAll(() => app.stop());

  it('computes each image and text once, independent of its batch, and reads them back', async () => {
    const encoders = app.services.encoders;
    const texts = ['a consolidation in the right lower lobe', 'not sure', 'a hypodense liver mass', 'a consolidation in the right lower lobe'];
    const first = await encoders.ensureEmbeddings(lab.ctx(), encoder, { imageIds: imageIds.slice(0, 3), texts });
    expect(first).toMatchObject({ computedImages: 3, computedTexts: 3 });
    const again = await encoders.ensureEmbeddings(lab.ctx(), encoder, { imageIds: imageIds.slice(0, 3), texts });
    expect(again).toMatchObject({ computedImages: 0, computedTexts: 0 });
    // New rows only for what is new; the old ones are not computed again.
    const more = await encoders.ensureEmbeddings(lab.ctx(), encoder, { imageIds, texts: [...texts, 'an enlarged lymph node'] });
    expect(more).toMatchObject({ computedImages: 2, computedTexts: 1 });
    expect(await encoders.embeddingCounts(lab.ctx(), encoder.id)).toEqual({ image: 5, text: 4 });

    const images = await encoders.embeddings(lab.ctx(), encoder.id, 'image', imageIds);
    const stored = await encoders.embeddings(lab.ctx(), encoder.id, 'text', texts.map(textKey));
    expect([...images.values()].every((v) => v.length === 16)).toBe(true);
    expect([...stored.values()].every((v) => v.length === 32)).toBe(true);

    // The same rows computed alone, in another order, give the stored vectors.
    const runner = await encoders.runnerFor(encoder);
    const image = (await app.services.images.findById(lab.ctx(), imageIds[4]))!;
    const bytes = (await app.services.images.readFile(image, 'original'))!.bytes;
    const alone = await runner.embed([{ pixels: await imagePixels(bytes, selectorManifestOf(runner.manifest)), text: 'a hypodense liver mass' }]);
    expect(Array.from(alone.image)).toEqual(Array.from(images.get(imageIds[4])!).map((v) => expect.closeTo(v, 5)));
    expect(Array.from(alone.text)).toEqual(Array.from(stored.get(textKey('a hypodense liver mass'))!).map((v) => expect.closeTo(v, 5)));

    // Another project reads none of them.
    expect((await encoders.embeddings(other.ctx(), encoder.id, 'image', imageIds)).size).toBe(0);
  });

  it('reports an image without bytes instead of embedding it', async () => {
    const [row] = await app.ds.query(`INSERT INTO images (project_id, caption, source) VALUES ($1, 'no bytes yet', 'URL') RETURNING id`, [lab.id]);
    const result = await app.services.encoders.ensureEmbeddings(lab.ctx(), encoder, { imageIds: [row.id], texts: [] });
    expect(result.computedImages).toBe(0);
    expect(result.unembeddable.get(row.id)).toBe('The image has no stored bytes');
  });
});
