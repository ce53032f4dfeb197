import os from 'node:os';
import { onnx } from 'onnx-proto';

/**
 * A small typed builder for ONNX models over `onnx-proto`: graph inputs and outputs with fixed or
 * symbolic dims, initializers from typed arrays, nodes with typed attributes, then `encode()` to the
 * bytes of a ModelProto. Defaults to opset 17 (default domain) and IR version 8. It checks names as it
 * goes (every node input must already exist, no name is produced twice); it does not infer shapes.
 */

export const DEFAULT_OPSET = 17;
export const DEFAULT_IR_VERSION = 8;

/** A dimension: a fixed size, or a symbolic name (dim_param) such as "batch". */
export type Dim = number | string;

export type ElementType = 'float32' | 'int64' | 'int32' | 'bool';

const ELEMENT_TYPES: Record<ElementType, onnx.TensorProto.DataType> = {
  float32: onnx.TensorProto.DataType.FLOAT,
  int64: onnx.TensorProto.DataType.INT64,
  int32: onnx.TensorProto.DataType.INT32,
  bool: onnx.TensorProto.DataType.BOOL,
};

/** The TensorProto.DataType code of an element type, e.g. for Cast's `to` attribute. */
export function elementTypeCode(type: ElementType): number {
  return ELEMENT_TYPES[type];
}

/** A node attribute; build one with the `attr` helpers so ints and floats are never confused. */
export type Attribute =
  | { kind: 'int'; value: number }
  | { kind: 'ints'; value: readonly number[] }
  | { kind: 'float'; value: number }
  | { kind: 'floats'; value: readonly number[] }
  | { kind: 'string'; value: string };

export const attr = {
  int: (value: number): Attribute => ({ kind: 'int', value }),
  ints: (value: readonly number[]): Attribute => ({ kind: 'ints', value }),
  float: (value: number): Attribute => ({ kind: 'float', value }),
  floats: (value: readonly number[]): Attribute => ({ kind: 'floats', value }),
  string: (value: string): Attribute => ({ kind: 'string', value }),
};

export interface ModelOptions {
  producerName?: string;
  producerVersion?: string;
  docString?: string;
  /** Written as metadata_props, in the order given. */
  metadata?: Record<string, string>;
  opset?: number;
  irVersion?: number;
}

export class OnnxGraph {
  private readonly inputs: onnx.IValueInfoProto[] = [];
  private readonly outputs: onnx.IValueInfoProto[] = [];
  private readonly initializers: onnx.ITensorProto[] = [];
  private readonly nodes: onnx.INodeProto[] = [];
  private readonly names = new Set<string>();
  private nodeCount = 0;

  constructor(readonly name: string) {}

  /** Declares a graph input; returns its name. */
  input(name: string, type: ElementType, dims: readonly Dim[]): string {
    this.claim(name);
    this.inputs.push(valueInfo(name, type, dims));
    return name;
  }

  /** Declares an existing value (a node output or an input) as a graph output. */
  output(name: string, type: ElementType, dims: readonly Dim[]): string {
    if (!this.names.has(name)) throw new Error(`ONNX graph ${this.name}: output ${name} is not produced by any node`);
    this.outputs.push(valueInfo(name, type, dims));
    return name;
  }

  /** A constant tensor stored in the graph (raw little-endian data); returns its name. */
  initializer(name: string, data: Float32Array | BigInt64Array | Int32Array, dims: readonly number[]): string {
    const count = dims.reduce((a, b) => a * b, 1);
    if (count !== data.length) throw new Error(`ONNX graph ${this.name}: initializer ${name} has ${data.length} values for dims [${dims.join(', ')}]`);
    this.claim(name);
    const dataType =
      data instanceof Float32Array ? onnx.TensorProto.DataType.FLOAT : data instanceof BigInt64Array ? onnx.TensorProto.DataType.INT64 : onnx.TensorProto.DataType.INT32;
    this.initializers.push({ name, dims: [...dims], dataType, rawData: littleEndianBytes(data) });
    return name;
  }

  /** Shorthand for a float32 initializer from plain numbers. */
  floats(name: string, values: readonly number[], dims: readonly number[] = [values.length]): string {
    return this.initializer(name, Float32Array.from(values), dims);
  }

  /** Shorthand for an int64 initializer from plain numbers (axes, shapes). */
  int64s(name: string, values: readonly number[], dims: readonly number[] = [values.length]): string {
    return this.initializer(name, BigInt64Array.from(values, (v) => BigInt(v)), dims);
  }

  /**
   * Adds a node. `outputs` names its outputs, or is a count of outputs to name automatically.
   * An empty string in `inputs` is an omitted optional input. Returns the output names.
   */
  node(opType: string, inputs: readonly string[], outputs: readonly string[] | number = 1, attributes: Record<string, Attribute> = {}): string[] {
    for (const input of inputs) {
      if (input !== '' && !this.names.has(input)) throw new Error(`ONNX graph ${this.name}: ${opType} reads ${input}, which is not defined yet`);
    }
    const index = this.nodeCount++;
    const outputNames = typeof outputs === 'number' ? Array.from({ length: outputs }, (_, i) => `${opType.toLowerCase()}_${index}${outputs > 1 ? `_${i}` : ''}`) : [...outputs];
    for (const output of outputNames) this.claim(output);
    this.nodes.push({
      name: `${opType}_${index}`,
      opType,
      input: [...inputs],
      output: outputNames,
      attribute: Object.entries(attributes).map(([attrName, value]) => attributeProto(attrName, value)),
    });
    return outputNames;
  }

  /** Adds a single-output node and returns that output's name. */
  op(opType: string, inputs: readonly string[], attributes: Record<string, Attribute> = {}, outputName?: string): string {
    return this.node(opType, inputs, outputName ? [outputName] : 1, attributes)[0];
  }

  toModel(options: ModelOptions = {}): onnx.ModelProto {
    if (this.outputs.length === 0) throw new Error(`ONNX graph ${this.name} has no outputs`);
    return onnx.ModelProto.create({
      irVersion: options.irVersion ?? DEFAULT_IR_VERSION,
      opsetImport: [{ domain: '', version: options.opset ?? DEFAULT_OPSET }],
      producerName: options.producerName ?? '',
      producerVersion: options.producerVersion ?? '',
      docString: options.docString ?? '',
      metadataProps: Object.entries(options.metadata ?? {}).map(([key, value]) => ({ key, value })),
      graph: {
        name: this.name,
        node: this.nodes,
        initializer: this.initializers,
        input: this.inputs,
        output: this.outputs,
      },
    });
  }

  /** The serialized ModelProto. */
  encode(options: ModelOptions = {}): Buffer {
    const bytes = onnx.ModelProto.encode(this.toModel(options)).finish();
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  private claim(name: string): void {
    if (!name) throw new Error(`ONNX graph ${this.name}: empty value name`);
    if (this.names.has(name)) throw new Error(`ONNX graph ${this.name}: ${name} is defined twice`);
    this.names.add(name);
  }
}

function valueInfo(name: string, type: ElementType, dims: readonly Dim[]): onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: ELEMENT_TYPES[type],
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function attributeProto(name: string, value: Attribute): onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  switch (value.kind) {
    case 'int':
      return { name, type: T.INT, i: value.value };
    case 'ints':
      return { name, type: T.INTS, ints: [...value.value] };
    case 'float':
      return { name, type: T.FLOAT, f: value.value };
    case 'floats':
      return { name, type: T.FLOATS, floats: [...value.value] };
    case 'string':
      return { name, type: T.STRING, s: Buffer.from(value.value, 'utf8') };
  }
}

/** ONNX raw_data is little-endian; typed arrays use the host's order, so copy as-is on LE hosts. */
function littleEndianBytes(data: Float32Array | BigInt64Array | Int32Array): Uint8Array {
  if (os.endianness() !== 'LE') throw new Error('Writing ONNX tensors needs a little-endian host');
  return new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
}
