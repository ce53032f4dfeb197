import { z } from 'zod';
import { SELECTOR_CONTRACT, SelectorManifest, selectorManifestSchema } from '../selectors/selector-manifest';

/**
 * The encoder contract (DESIGN.md §5, issue 11): the selector's three inputs and its manifest style,
 * two outputs, `image_embeds` [N, Di] and `text_embeds` [N, Dt]. A trained selector is a head over
 * those embeddings; joined to its encoder it satisfies the selector contract again.
 */
export const ENCODER_CONTRACT = 'biomed-vital-encoder/v1';

/** The files of an encoder folder. */
export const ENCODER_FILE_NAMES = { model: 'model.onnx', tokenizer: 'tokenizer.json', manifest: 'encoder.json' } as const;
export type EncoderFileName = keyof typeof ENCODER_FILE_NAMES;

/** The encoder's two outputs, by name. */
export const ENCODER_OUTPUTS = { image: 'image_embeds', text: 'text_embeds' } as const;

export const encoderManifestSchema = z
  .object({
    contract: z.literal(ENCODER_CONTRACT),
    description: z.string().max(2000).optional(),
    // Preprocessing and text exactly as a selector's: a trained selector reuses them unchanged.
    image: selectorManifestSchema.shape.image,
    text: selectorManifestSchema.shape.text,
    embeddings: z
      .object({
        /** Di, the width of `image_embeds`. */
        imageDim: z.number().int().min(1).max(65536),
        /** Dt, the width of `text_embeds`. */
        textDim: z.number().int().min(1).max(65536),
      })
      .strict(),
  })
  .strict();

export type EncoderManifest = z.infer<typeof encoderManifestSchema>;
export type EncoderManifestInput = z.input<typeof encoderManifestSchema>;

/**
 * The selector manifest of a head trained over this encoder: same preprocessing and text, the score
 * a logit. Also what the embedding code passes to `imagePixels` and `selectorText`.
 */
export function selectorManifestOf(manifest: EncoderManifest, description?: string): SelectorManifest {
  return selectorManifestSchema.parse({
    contract: SELECTOR_CONTRACT,
    ...(description ?? manifest.description ? { description: (description ?? manifest.description)!.slice(0, 2000) } : {}),
    image: manifest.image,
    text: manifest.text,
    score: 'logit',
  });
}
