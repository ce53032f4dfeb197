import crypto from 'node:crypto';
import { RequestContext } from '../projects/request-context';
import { CandidatesService } from '../candidates/candidates.service';
import { ImagesService } from '../images/images.service';
import { PreferencesService } from '../preferences/preferences.service';
import { EncoderModel } from '../encoders/encoder-model.entity';
import { EncodersService, textKey } from '../encoders/encoders.service';
import { judgedItemSource, SelectorTextSource } from '../selectors/selector-inputs';
import { PreferencePairs } from './head-trainer';
import { buildTrainingPairs, itemKey, PairItem, PreferenceRecord, splitPairsByImage, TrainingPair } from './preference-pairs';
import type { TrainingDataSummary, TrainingParams } from './training.service';

export interface TrainingDeps {
  preferences: PreferencesService;
  candidates: CandidatesService;
  images: ImagesService;
  encoders: EncodersService;
}

/** A training run's data: pairs with both items embedded, and each item's joined embedding row. */
export interface TrainingData {
  /** Di + Dt. */
  dim: number;
  training: TrainingPair[];
  validation: TrainingPair[];
  /** Joined embedding [image ‖ text] per itemKey. */
  rows: Map<string, Float32Array>;
  summary: TrainingDataSummary;
}

/**
 * Builds a run's pairs (preference-pairs.ts) from the project's preferences recorded before the run
 * was created, splits off the held-out clinician images (seeded), keeps the sources the run asked
 * for, and makes sure every item's image and text have stored embeddings under the encoder
 * (computing the missing ones once). Pairs whose item cannot be embedded (an image without bytes, a
 * round that does not exist) are left out and counted as `withoutEmbeddings`.
 */
export async function loadTrainingData(ctx: RequestContext, params: TrainingParams, encoder: EncoderModel, deps: TrainingDeps, signal?: AbortSignal): Promise<TrainingData> {
  const rows = await deps.preferences.trainingRecords(ctx, new Date(params.preferencesBefore));
  const candidateIds = [...new Set(rows.flatMap((r) => (r.otherCandidateId ? [r.candidateId, r.otherCandidateId] : [r.candidateId])))];
  const imageOf = new Map((await deps.candidates.imagesOf(ctx, candidateIds)).map((c) => [c.id, c.imageId]));
  const records: PreferenceRecord[] = rows
    .filter((r) => imageOf.has(r.candidateId))
    .map((r) => ({ ...r, imageId: imageOf.get(r.candidateId)!, otherImageId: r.otherCandidateId ? (imageOf.get(r.otherCandidateId) ?? null) : null }));
  const pairs = buildTrainingPairs(records, { clinicianWeight: 1 });
  const split = splitPairsByImage(pairs, { validationFraction: params.validationFraction, seed: params.seed });
  const kept = split.training.filter((p) => (p.source === 'MODEL' ? params.includeModelPairs : params.includeClinicianPairs));

  // Every item's image and text.
  const items = new Map<string, PairItem>();
  for (const pair of [...kept, ...split.validation]) for (const item of [pair.preferred, pair.rejected]) items.set(itemKey(item), item);
  const conversations = new Map((await deps.candidates.conversations(ctx, [...new Set([...items.values()].map((i) => i.candidateId))])).map((c) => [c.id, c]));
  const figures = new Map((await deps.images.figuresByIds(ctx, [...new Set([...conversations.values()].map((c) => c.imageId))])).map((f) => [f.id, f]));
  const itemInputs = new Map<string, { imageId: string; text: string }>();
  for (const [key, item] of items) {
    const conversation = conversations.get(item.candidateId);
    const figure = conversation && figures.get(conversation.imageId);
    if (!conversation || !figure) continue;
    const source: SelectorTextSource = { caption: figure.caption, mentions: figure.mentions, rounds: conversation.rounds };
    try {
      itemInputs.set(key, { imageId: conversation.imageId, text: deps.encoders.textFor(encoder, judgedItemSource(source, item)) });
    } catch {
      // A judgement of a round or answer the candidate does not have: its pairs are left out.
    }
  }
  const inputs = [...itemInputs.values()];
  const ensured = await deps.encoders.ensureEmbeddings(ctx, encoder, { imageIds: inputs.map((i) => i.imageId), texts: inputs.map((i) => i.text) }, signal);
  const [imageEmbeds, textEmbeds] = await Promise.all([
    deps.encoders.embeddings(ctx, encoder.id, 'image', [...new Set(inputs.map((i) => i.imageId))]),
    deps.encoders.embeddings(ctx, encoder.id, 'text', [...new Set(inputs.map((i) => textKey(i.text)))]),
  ]);
  const dim = encoder.imageDim + encoder.textDim;
  const joined = new Map<string, Float32Array>();
  for (const [key, input] of itemInputs) {
    const image = imageEmbeds.get(input.imageId);
    const text = textEmbeds.get(textKey(input.text));
    if (!image || !text) continue;
    const row = new Float32Array(dim);
    row.set(image, 0);
    row.set(text, encoder.imageDim);
    joined.set(key, row);
  }
  const embedded = (p: TrainingPair) => joined.has(itemKey(p.preferred)) && joined.has(itemKey(p.rejected));
  const training = kept.filter(embedded);
  const validation = split.validation.filter(embedded);
  const byKind: Record<string, number> = {};
  for (const p of training) byKind[`${p.source}:${p.kind}`] = (byKind[`${p.source}:${p.kind}`] ?? 0) + 1;
  const hash = crypto.createHash('sha256');
  hash.update(`encoder:${encoder.filesHash}\n`);
  for (const [label, list] of [['training', training], ['validation', validation]] as const) {
    for (const p of list) hash.update(`${label}|${p.source}|${p.kind}|${p.author}|${itemKey(p.preferred)}|${itemKey(p.rejected)}\n`);
  }
  return {
    dim,
    training,
    validation,
    rows: joined,
    summary: {
      pairCounts: {
        model: training.filter((p) => p.source === 'MODEL').length,
        clinician: training.filter((p) => p.source === 'CLINICIAN').length,
        validation: validation.length,
        droppedModelPairs: split.droppedModelPairs,
        droppedClinicianPairs: split.droppedClinicianPairs,
        withoutEmbeddings: kept.length - training.length + split.validation.length - validation.length,
        byKind,
      },
      validationImageIds: split.validationImageIds,
      dataHash: hash.digest('hex'),
      embeddingsComputed: { images: ensured.computedImages, texts: ensured.computedTexts },
    },
  };
}

/** Pairs as the trainer takes them: joined rows, clinician pairs weighing `clinicianWeight`, model pairs 1. */
export function pairTensors(pairs: readonly TrainingPair[], rows: Map<string, Float32Array>, dim: number, clinicianWeight: number): PreferencePairs {
  const chosen = new Float32Array(pairs.length * dim);
  const rejected = new Float32Array(pairs.length * dim);
  const weights = new Float32Array(pairs.length);
  pairs.forEach((p, i) => {
    chosen.set(rows.get(itemKey(p.preferred))!, i * dim);
    rejected.set(rows.get(itemKey(p.rejected))!, i * dim);
    weights[i] = p.source === 'CLINICIAN' ? clinicianWeight : 1;
  });
  return { dim, chosen, rejected, weights };
}
