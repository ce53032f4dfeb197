import { buildReferenceEncoder, ReferenceEncoderOptions } from '../../src/modules/encoders/reference-encoder';
import { toGlobalId } from '../../src/platform/ids';
import { TestApp } from './test-app';
import { gqlUpload, GraphQLResponse, UploadFile } from './graphql-client';

export interface EncoderUpload {
  model?: Buffer;
  tokenizer?: Buffer;
  manifest?: Buffer;
}

const built = new Map<string, Required<EncoderUpload>>();

/** The reference encoder's three files as bytes, ready to upload (built once per options). */
export function referenceEncoderUpload(options: ReferenceEncoderOptions = {}): Required<EncoderUpload> {
  const key = JSON.stringify(options);
  if (!built.has(key)) {
    const files = buildReferenceEncoder(options);
    built.set(key, { model: files.model, tokenizer: Buffer.from(files.tokenizer), manifest: Buffer.from(JSON.stringify(files.manifest, null, 2)) });
  }
  return { ...built.get(key)! };
}

export const REGISTER_ENCODER = `mutation($input: RegisterEncoderModelInput!) {
  registerEncoderModel(input: $input) {
    encoderModel { id name version imageDim textDim filesHash manifest signature storedEmbeddings { images texts } }
    userErrors { field message code }
  }
}`;

/** registerEncoderModel as a GraphQL multipart request, the way a notebook uploads files. */
export async function registerEncoder(app: TestApp, key: string, name: string, upload: EncoderUpload): Promise<GraphQLResponse> {
  const files: UploadFile[] = [];
  const input: Record<string, unknown> = { name };
  for (const [field, fileName] of [['model', 'model.onnx'], ['tokenizer', 'tokenizer.json'], ['manifest', 'encoder.json']] as const) {
    const bytes = upload[field];
    if (!bytes) continue;
    input[field] = null;
    files.push({ path: `input.${field}`, name: fileName, bytes });
  }
  return gqlUpload(app.graphqlUrl, key, REGISTER_ENCODER, { input }, files);
}

export const encoderGlobalId = (id: string) => toGlobalId('EncoderModel', id);
