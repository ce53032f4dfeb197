import type { TrainerState } from './head-trainer';

/**
 * A trainer's state as bytes for the database: a 4-byte little-endian length, a JSON header (shape,
 * Adam step, epochs done, tensor lengths), then every float32 tensor little-endian (weights, first
 * moments, second moments, in headParameterSpecs order). Exact: decoding gives the same bits, so a
 * run resumed from a checkpoint ends with the weights an uninterrupted run gets.
 */
interface Header {
  shape: TrainerState['parameters']['shape'];
  step: number;
  epochs: TrainerState['epochs'];
  lengths: number[];
}

export function encodeCheckpoint(state: TrainerState): Buffer {
  const tensors = [...state.parameters.tensors, ...state.adam.firstMoments, ...state.adam.secondMoments];
  const header: Header = { shape: state.parameters.shape, step: state.adam.step, epochs: state.epochs, lengths: state.parameters.tensors.map((t) => t.length) };
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const prefix = Buffer.alloc(4);
  prefix.writeUInt32LE(json.length, 0);
  return Buffer.concat([prefix, json, ...tensors.map((t) => Buffer.from(t.buffer, t.byteOffset, t.byteLength))]);
}

export function decodeCheckpoint(bytes: Buffer): TrainerState {
  const length = bytes.readUInt32LE(0);
  const header = JSON.parse(bytes.subarray(4, 4 + length).toString('utf8')) as Header;
  let offset = 4 + length;
  const read = (n: number) => {
    const values = new Float32Array(n);
    new Uint8Array(values.buffer).set(bytes.subarray(offset, offset + n * 4));
    offset += n * 4;
    return values;
  };
  const parameters = header.lengths.map(read);
  const firstMoments = header.lengths.map(read);
  const secondMoments = header.lengths.map(read);
  if (offset !== bytes.length) throw new Error(`checkpoint has ${bytes.length - offset} bytes left over`);
  return { parameters: { shape: header.shape, tensors: parameters }, adam: { step: header.step, firstMoments, secondMoments }, epochs: header.epochs };
}

/** A head's weights alone (head.bin of a trained selector): float32 little-endian tensors back to back. */
export function encodeHeadTensors(tensors: Float32Array[]): Buffer {
  return Buffer.concat(tensors.map((t) => Buffer.from(t.buffer, t.byteOffset, t.byteLength)));
}

export function decodeHeadTensors(bytes: Buffer, lengths: number[]): Float32Array[] {
  let offset = 0;
  const tensors = lengths.map((n) => {
    const values = new Float32Array(n);
    new Uint8Array(values.buffer).set(bytes.subarray(offset, offset + n * 4));
    offset += n * 4;
    return values;
  });
  if (offset !== bytes.length) throw new Error(`head.bin holds ${bytes.length} bytes, the shape needs ${offset}`);
  return tensors;
}
