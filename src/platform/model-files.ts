import { OnnxRuntime, ThreadedSession } from './onnx';
import { loadTokenizer, TextTokenizer } from './tokenizer';
import { userError, UserErrorCode, UserErrorsException } from './user-errors';

/**
 * The checks every uploaded model folder passes before anything is stored (selectors and encoders
 * alike: model.onnx, tokenizer.json and a manifest), each failure a userError on the file at fault.
 * What differs between the kinds (the manifest's schema, the output contract, the dry run) stays
 * with each kind.
 */
export type ModelFileName = 'model' | 'tokenizer' | 'manifest';

export const firstLine = (error: unknown) => String((error as Error)?.message ?? error).split('\n')[0].slice(0, 300);

export function fileError(field: ModelFileName, code: UserErrorCode, message: string): UserErrorsException {
  return new UserErrorsException([userError(code, message, ['input', field])]);
}

/** Every file is there, non-empty and within the size limit; `fileNames` are the names users see. */
export function checkModelFiles(files: Partial<Record<ModelFileName, Buffer | null>>, fileNames: Record<ModelFileName, string>, maxBytes: number): Record<ModelFileName, Buffer> {
  for (const name of ['model', 'tokenizer', 'manifest'] as const) {
    const bytes = files[name];
    if (!bytes || bytes.length === 0) throw fileError(name, UserErrorCode.INVALID, `${fileNames[name]} is missing`);
    if (bytes.length > maxBytes) throw fileError(name, UserErrorCode.TOO_LARGE, `${fileNames[name]} is over ${maxBytes} bytes`);
  }
  return files as Record<ModelFileName, Buffer>;
}

/** The tokenizer loads and encodes a phrase at the manifest's length. */
export function checkedTokenizer(bytes: Buffer, maxLength: number): TextTokenizer {
  try {
    const tokenizer = loadTokenizer(bytes.toString('utf8'));
    tokenizer.encodeBatch(['a figure'], maxLength);
    return tokenizer;
  } catch (error) {
    const reason = firstLine(error);
    throw fileError('tokenizer', UserErrorCode.INVALID, reason.startsWith('tokenizer.json') ? reason : `tokenizer.json is not usable: ${reason}`);
  }
}

/** The model loads in ONNX Runtime (in a compute thread, as it will run). */
export async function checkedSession(runtime: OnnxRuntime, bytes: Buffer): Promise<ThreadedSession> {
  try {
    return await runtime.loadInThread(bytes);
  } catch (error) {
    throw fileError('model', UserErrorCode.INVALID, `model.onnx does not load in ONNX Runtime: ${firstLine(error)}`);
  }
}
