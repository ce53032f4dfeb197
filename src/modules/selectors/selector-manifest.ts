import { z } from 'zod';

/** The contract every selector follows (DESIGN.md §5); a manifest names it so later contracts can coexist. */
export const SELECTOR_CONTRACT = 'biomed-vital-selector/v1';

/** The files of a selector folder. */
export const SELECTOR_FILE_NAMES = { model: 'model.onnx', tokenizer: 'tokenizer.json', manifest: 'selector.json' } as const;

/** Parts of a candidate that can make the selector's text, in the order the template lists them. */
export const TEXT_FIELDS = ['caption', 'mentions', 'question', 'answer'] as const;
export type TextField = (typeof TEXT_FIELDS)[number];

const channelTriple = z.tuple([z.number().finite(), z.number().finite(), z.number().finite()]);
const byte = z.number().int().min(0).max(255);

/** Flattening composites onto white unless the manifest names another colour: PMC figures are drawn on white. */
export const DEFAULT_ALPHA_BACKGROUND: [number, number, number] = [255, 255, 255];

export const selectorManifestSchema = z
  .object({
    contract: z.literal(SELECTOR_CONTRACT),
    description: z.string().max(2000).optional(),
    image: z
      .object({
        /** Side of the square `pixel_values` the model takes (H = W). */
        size: z.number().int().min(8).max(1024),
        /** cover: resize the shortest edge and centre-crop (CLIP); contain: letterbox; fill: stretch. */
        resize: z.enum(['cover', 'contain', 'fill']),
        mean: channelTriple,
        std: channelTriple.refine((s) => s.every((v) => v > 0), 'std must be positive'),
        /**
         * What happens to an alpha channel. drop (default): keep every pixel's stored colour and
         * ignore alpha, as PIL's `Image.convert('RGB')` does; flatten: composite onto
         * `alphaBackground`, `floor((a·c + (255 − a)·bg) / 255)` per 8-bit channel.
         */
        alpha: z.enum(['drop', 'flatten']).default('drop'),
        /** The RGB colour (0-255 each) flatten composites onto; default white. Only with `alpha: "flatten"`. */
        alphaBackground: z.tuple([byte, byte, byte]).optional(),
        /** ignore (default): pixels as stored, PIL's default; apply: rotate/flip per the EXIF tag, as `ImageOps.exif_transpose`. */
        exifOrientation: z.enum(['ignore', 'apply']).default('ignore'),
      })
      .strict()
      .refine((image) => image.alphaBackground === undefined || image.alpha === 'flatten', {
        message: 'alphaBackground only applies with alpha: "flatten"',
        path: ['alphaBackground'],
      }),
    text: z
      .object({
        maxLength: z.number().int().min(4).max(4096),
        /** Which parts make the text, in this order: caption, in-text mentions, then each selected round's question and answer. */
        fields: z.array(z.enum(TEXT_FIELDS)).min(1),
        /** Which QA rounds contribute question/answer text: all of them, or only the first n. */
        rounds: z.union([z.literal('all'), z.number().int().min(1)]),
        separator: z.string().max(32).default(' '),
      })
      .strict(),
    /** Whether the model's output is a logit or already a probability; both rank the same way. */
    score: z.enum(['logit', 'probability']),
  })
  .strict();

/** A manifest as validated, with defaults filled in. */
export type SelectorManifest = z.infer<typeof selectorManifestSchema>;
/** A manifest as written in selector.json (the fields with defaults may be left out). */
export type SelectorManifestInput = z.input<typeof selectorManifestSchema>;

/** The tensors of the contract, by name. */
export const SELECTOR_INPUTS = {
  pixel_values: { type: 'float32', rank: 4 },
  input_ids: { type: 'int64', rank: 2 },
  attention_mask: { type: 'int64', rank: 2 },
} as const;
