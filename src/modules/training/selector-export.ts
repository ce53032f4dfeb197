import { onnx } from 'onnx-proto';
import { OnnxGraph } from '../../platform/onnx-graph';
import { appendSelectorHead, HeadParameters } from './head-graph';

/** The opset a joined model needs at least: the head's Squeeze takes its axes as an input (opset 13). */
const MIN_OPSET = 13;

/**
 * One ONNX model that satisfies the selector contract (DESIGN.md §5): the encoder's graph as it is,
 * with the trained head appended over its `image_embeds` and `text_embeds` (Concat, image first, as
 * the training rows were joined), and a single output `score` [N]. The head's values are named
 * `head.…` and its nodes `head/…`; a name the encoder already uses is refused rather than shadowed.
 * `metadata` is added to the model's metadata_props (training run, clinician weight).
 */
export function joinEncoderAndHead(encoderModel: Uint8Array, parameters: HeadParameters, metadata: Record<string, string> = {}): Buffer {
  const model = onnx.ModelProto.decode(encoderModel);
  const graph = model.graph;
  if (!graph) throw new Error('The encoder model has no graph');
  const opset = Number(model.opsetImport?.find((o) => !o.domain || o.domain === 'ai.onnx')?.version ?? 0);
  if (opset < MIN_OPSET) throw new Error(`The encoder uses opset ${opset}; joining a trained head needs opset ${MIN_OPSET} or later (export it again with a newer opset)`);

  // The head built on its own, over two stand-in inputs named as the encoder's outputs.
  const head = new OnnxGraph('selector_head');
  head.input('image_embeds', 'float32', ['batch', 1]);
  head.input('text_embeds', 'float32', ['batch', 1]);
  const score = appendSelectorHead(head, 'image_embeds', 'text_embeds', parameters);
  const outputName = 'score';
  head.op('Identity', [score], {}, outputName);
  head.output(outputName, 'float32', ['batch']);
  const headGraph = head.toModel().graph!;

  const taken = new Set<string>([
    ...(graph.input ?? []).map((v) => v.name!),
    ...(graph.initializer ?? []).map((t) => t.name!),
    ...(graph.node ?? []).flatMap((n) => n.output ?? []),
  ]);
  const added = [...(headGraph.initializer ?? []).map((t) => t.name!), ...(headGraph.node ?? []).flatMap((n) => n.output ?? [])];
  const clash = added.find((name) => taken.has(name));
  if (clash) throw new Error(`The encoder already has a value named ${clash}`);
  if (!taken.has('image_embeds') || !taken.has('text_embeds')) throw new Error('The encoder does not produce image_embeds and text_embeds');

  graph.initializer = [...(graph.initializer ?? []), ...(headGraph.initializer ?? [])];
  graph.node = [...(graph.node ?? []), ...(headGraph.node ?? []).map((n) => ({ ...n, name: `head/${n.name}` }))];
  graph.output = headGraph.output;
  model.metadataProps = [...(model.metadataProps ?? []), ...Object.entries(metadata).map(([key, value]) => ({ key, value }))];
  model.docString = `Selector trained in BioMed-VITAL: the encoder joined to a head over its embeddings. ${model.docString ?? ''}`.trim();
  const bytes = onnx.ModelProto.encode(model).finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
