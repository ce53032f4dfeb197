import { RequestContext } from '../projects/request-context';
import { CandidatesService } from '../candidates/candidates.service';
import { ImagesService } from '../images/images.service';
import { EncodersService, textKey } from '../encoders/encoders.service';
import { SelectorModel } from '../selectors/selector-model.entity';
import { SelectorsService } from '../selectors/selectors.service';
import { headParameterSpecs } from '../training/head-graph';
import { HeadScorer } from '../training/head-trainer';
import { decodeHeadTensors } from '../training/training-checkpoint';

/** What a batch of candidates came to: scores, and failures with their reason. */
export interface TrainedScores {
  scored: { id: string; value: number }[];
  failed: { id: string; reason: string }[];
}

/**
 * Scoring with a selector trained in the service (issue 11): the candidates' image and text
 * embeddings come from the encoder's stored embeddings (computed here only for images and texts
 * never embedded before), and only the trained head runs. The joined ONNX model gives the same
 * scores; it is what an export or another service runs.
 */
export class TrainedSelectorScorer {
  private readonly heads = new Map<string, Promise<HeadScorer>>();

  constructor(
    private readonly candidates: CandidatesService,
    private readonly images: ImagesService,
    private readonly encoders: EncodersService,
    private readonly selectors: SelectorsService,
  ) {}

  /** The head of a trained selector, loaded once per process. */
  private headFor(model: SelectorModel): Promise<HeadScorer> {
    let head = this.heads.get(model.id);
    if (!head) {
      head = (async () => {
        const bytes = await this.selectors.headBytes(model);
        const shape = { inputDim: model.head!.inputDim, hidden: model.head!.hidden };
        const tensors = decodeHeadTensors(bytes!, headParameterSpecs(shape).map((s) => s.dims.reduce((a, b) => a * b, 1)));
        return HeadScorer.create({ shape, tensors }, { intraOpThreads: 1 });
      })();
      head.catch(() => this.heads.delete(model.id));
      this.heads.set(model.id, head);
    }
    return head;
  }

  async score(ctx: RequestContext, model: SelectorModel, candidateIds: string[], signal?: AbortSignal): Promise<TrainedScores> {
    const encoder = model.encoderId ? await this.encoders.findById(ctx, model.encoderId) : null;
    if (!encoder) return { scored: [], failed: candidateIds.map((id) => ({ id, reason: 'The encoder of the trained selector was deleted' })) };
    const conversations = await this.candidates.conversations(ctx, candidateIds);
    const figures = new Map((await this.images.figuresByIds(ctx, [...new Set(conversations.map((c) => c.imageId))])).map((f) => [f.id, f]));
    const inputs = new Map<string, { imageId: string; text: string }>();
    for (const c of conversations) {
      const figure = figures.get(c.imageId);
      if (figure) inputs.set(c.id, { imageId: c.imageId, text: this.encoders.textFor(encoder, { caption: figure.caption, mentions: figure.mentions, rounds: c.rounds }) });
    }
    const wanted = [...inputs.values()];
    const ensured = await this.encoders.ensureEmbeddings(ctx, encoder, { imageIds: wanted.map((w) => w.imageId), texts: wanted.map((w) => w.text) }, signal);
    const [images, texts] = await Promise.all([
      this.encoders.embeddings(ctx, encoder.id, 'image', [...new Set(wanted.map((w) => w.imageId))]),
      this.encoders.embeddings(ctx, encoder.id, 'text', [...new Set(wanted.map((w) => textKey(w.text)))]),
    ]);
    const dim = encoder.imageDim + encoder.textDim;
    const failed: TrainedScores['failed'] = [];
    const ready: string[] = [];
    const rows: Float32Array[] = [];
    for (const id of candidateIds) {
      const input = inputs.get(id);
      const image = input && images.get(input.imageId);
      const text = input && texts.get(textKey(input.text));
      if (!input) failed.push({ id, reason: 'The candidate was deleted' });
      else if (!image || !text) failed.push({ id, reason: ensured.unembeddable.get(input.imageId) ?? 'The image has no stored bytes' });
      else {
        const row = new Float32Array(dim);
        row.set(image, 0);
        row.set(text, encoder.imageDim);
        rows.push(row);
        ready.push(id);
      }
    }
    const joined = new Float32Array(rows.length * dim);
    rows.forEach((row, i) => joined.set(row, i * dim));
    const values = ready.length ? await (await this.headFor(model)).score(joined) : new Float32Array(0);
    const scored: TrainedScores['scored'] = [];
    ready.forEach((id, i) => {
      if (Number.isFinite(values[i])) scored.push({ id, value: values[i] });
      else failed.push({ id, reason: `The selector gave a non-finite score (${values[i]})` });
    });
    return { scored, failed };
  }
}
