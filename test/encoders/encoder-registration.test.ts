/**
 * Encoders (issue 11): registration through GraphQL multipart uploads validates the encoder
 * contract (inputs as a selector's, outputs image_embeds [N, Di] and text_embeds [N, Dt] matching
 * encoder.json, a finite dry run) and answers clear userErrors; roles and projects are kept apart.
 */
import { createTestProject, startTestApp, TestApp, TestProject } from '../support/test-app';
import { errorCodes, gql } from '../support/graphql-client';
import { referenceEncoderUpload, registerEncoder } from '../support/training-fixture';
import { referenceSelectorUpload } from '../support/scoring-fixture';
import { buildReferenceEncoder } from '../../src/modules/encoders/reference-encoder';

jest.setTimeout(60_000);

describe('encoder registration', () => {
  let app: TestApp;
  let lab: TestProject;
  let other: TestProject;

  beforeAll(async () => {
    app = await startTestApp();
    lab = await createTestProject(app, 'encoders-lab');
    other = await createTestProject(app, 'encoders-other');
  });
  afterAll(() => app.stop());

  it('registers the reference encoder with its widths, and the same files again return the same version', async () => {
    const first = await registerEncoder(app, lab.keys.CURATOR, 'reference', referenceEncoderUpload());
    expect(first.errors).toBeUndefined();
    const payload = first.data!.registerEncoderModel;
    expect(payload.userErrors).toEqual([]);
    expect(payload.encoderModel).toMatchObject({ name: 'reference', version: 1, imageDim: 16, textDim: 32, storedEmbeddings: { images: 0, texts: 0 } });
    expect(payload.encoderModel.signature.outputs.map((o: { name: string }) => o.name).sort()).toEqual(['image_embeds', 'text_embeds']);

    const again = await registerEncoder(app, lab.keys.CURATOR, 'reference', referenceEncoderUpload());
    expect(again.data!.registerEncoderModel.encoderModel.id).toBe(payload.encoderModel.id);
    const wider = await registerEncoder(app, lab.keys.CURATOR, 'reference', referenceEncoderUpload({ textDim: 48 }));
    expect(wider.data!.registerEncoderModel.encoderModel).toMatchObject({ version: 2, textDim: 48 });

    const listed = await gql(app.graphqlUrl, lab.keys.VIEWER, `{ encoderModels(first: 10) { totalCount edges { node { name version } } } }`);
    expect(listed.data!.encoderModels.totalCount).toBe(2);
    const theirs = await gql(app.graphqlUrl, other.keys.VIEWER, `{ encoderModels(first: 10) { totalCount } }`);
    expect(theirs.data!.encoderModels.totalCount).toBe(0);
    const node = await gql(app.graphqlUrl, other.keys.OWNER, `query($id: ID!) { node(id: $id) { id } }`, { id: payload.encoderModel.id });
    expect(errorCodes(node)).toEqual(['NOT_FOUND']);
  });

  it('answers userErrors for a selector uploaded as an encoder, a renamed output, a width the manifest contradicts, a bad manifest and a missing file', async () => {
    const good = referenceEncoderUpload();
    const selector = referenceSelectorUpload();
    const manifestOf = (files: ReturnType<typeof buildReferenceEncoder>) => Buffer.from(JSON.stringify(files.manifest));
    const cases: [string, Parameters<typeof registerEncoder>[3], string, RegExp][] = [
      ['selector-model', { ...good, model: selector.model }, 'model', /missing output `image_embeds`/],
      ['renamed', { ...good, model: buildReferenceEncoder({ textOutputName: 'text_features' }).model }, 'model', /missing output `text_embeds`/],
      ['wrong-width', { ...good, manifest: manifestOf(buildReferenceEncoder({ manifestTextDim: 64 })) }, 'model', /`text_embeds` has width 32, the manifest says 64/],
      ['selector-manifest', { ...good, manifest: selector.manifest }, 'manifest', /encoder.json is not a valid manifest/],
      ['no-tokenizer', { model: good.model, manifest: good.manifest }, 'tokenizer', /tokenizer.json is missing/],
      ['not-onnx', { ...good, model: Buffer.from('not a model') }, 'model', /does not load in ONNX Runtime/],
    ];
    for (const [name, upload, field, message] of cases) {
      const res = await registerEncoder(app, lab.keys.CURATOR, name, upload);
      expect(res.errors).toBeUndefined();
      const { encoderModel, userErrors } = res.data!.registerEncoderModel;
      expect(encoderModel).toBeNull();
      expect(userErrors).toHaveLength(1);
      expect(userErrors[0].field).toEqual(['input', field]);
      expect(userErrors[0].message).toMatch(message);
    }
  });

  it('lets curators register and refuses clinicians and viewers', async () => {
    for (const role of ['CLINICIAN', 'VIEWER'] as const) {
      const res = await registerEncoder(app, lab.keys[role], 'forbidden', referenceEncoderUpload());
      expect(errorCodes(res)).toEqual(['FORBIDDEN']);
    }
  });
});
