import type { FileUpload } from 'graphql-upload-minimal';
import { userError, UserErrorCode, UserErrorsException } from './user-errors';

export interface UploadedFile {
  fileName: string;
  bytes: Buffer;
}

/**
 * Reads one file of a GraphQL multipart request into memory, stopping at the byte limit.
 * graphql-upload-minimal cuts a file at the limit and, when it did so before reading began, fails
 * the stream with a 413: both answer TOO_LARGE on `field`.
 */
export async function readUpload(upload: Promise<FileUpload>, maxBytes: number, field: string[]): Promise<UploadedFile> {
  const file = await upload.catch((error: { status?: number; message?: string }) => {
    // The multipart `map` named a file part the request did not carry (graphql-upload-minimal rejects with a 4xx).
    if (typeof error?.status === 'number' && error.status >= 400 && error.status < 500) {
      throw new UserErrorsException([userError(UserErrorCode.INVALID, `No file part for this field: ${error.message ?? 'file missing in the request'}`, field)]);
    }
    throw error;
  });
  const tooLarge = () => new UserErrorsException([userError(UserErrorCode.TOO_LARGE, `${file.filename} is over ${maxBytes} bytes`, field)]);
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of file.createReadStream()) {
      size += (chunk as Buffer).length;
      if (size > maxBytes) throw tooLarge();
      chunks.push(chunk as Buffer);
    }
  } catch (error) {
    if ((error as { status?: number }).status === 413) throw tooLarge();
    throw error;
  }
  return { fileName: file.filename, bytes: Buffer.concat(chunks) };
}
