import { z } from 'zod';
import { Speaker } from '../candidates/conversation';
import { DOMAIN_FLAG_MODALITY, Modality } from '../images/modality';
import type { ImageRecord } from '../images/images.service';

/**
 * One figure record in the LLaVA-Med / BioMed-VITAL JSON shape (`llava_med_instruct_fig_captions.json`,
 * BioMed-VITAL's clinician demonstrations). Unknown fields are rejected so that a file of another
 * shape fails loudly instead of importing empty records.
 */
export const figureRecordSchema = z
  .object({
    id: z.union([z.number().int(), z.string().max(128)]).optional(),
    imgs: z.string().min(1).max(512).optional(),
    image: z.string().min(1).max(512).optional(),
    domain: z.partialRecord(z.enum(Object.keys(DOMAIN_FLAG_MODALITY) as [string, ...string[]]), z.boolean()).optional(),
    conversations: z
      .array(z.object({ from: z.enum(['human', 'gpt']), value: z.string().min(1).max(20000) }).strict())
      .min(2)
      .max(100)
      .optional(),
    fig_caption: z.string().max(20000).nullable().optional(),
    fig_label: z.string().max(128).nullable().optional(),
    fig_id: z.string().max(128).nullable().optional(),
    graphic_ref: z.string().max(512).nullable().optional(),
    pair_id: z.string().min(1).max(128),
    pmid: z.union([z.string().min(1).max(64), z.number().int()]).transform(String),
    in_text_mention: z
      .array(z.object({ tokens: z.string().max(20000), entities: z.array(z.unknown()).optional() }).strict())
      .nullable()
      .optional(),
  })
  .strict()
  .superRefine((r, issue) => {
    // A conversation starts with a question, answers each question before the next one and ends with
    // an answer. One answer may span consecutive gpt turns: BioMed-VITAL's own clinician
    // demonstrations do that (ids 34 and 49 of clinician-demonstrations.json).
    const turns = r.conversations;
    if (!Array.isArray(turns) || turns.length === 0) return;
    turns.forEach((turn, i) => {
      if (i === 0 && turn?.from !== 'human') issue.addIssue({ code: 'custom', path: ['conversations', 0, 'from'], message: 'turn 0 should be from human' });
      if (i > 0 && turn?.from === 'human' && turns[i - 1]?.from === 'human') {
        issue.addIssue({ code: 'custom', path: ['conversations', i, 'from'], message: `turn ${i} should be from gpt: the question of turn ${i - 1} has no answer` });
      }
    });
    if (turns[turns.length - 1]?.from !== 'gpt') {
      issue.addIssue({ code: 'custom', path: ['conversations'], message: 'a conversation ends with an answer' });
    }
  });

export type FigureRecord = z.infer<typeof figureRecordSchema>;

export function recordFileName(r: FigureRecord): string | null {
  return r.imgs ?? r.image ?? null;
}

export function recordModalities(r: FigureRecord): Modality[] {
  const flagged = Object.entries(r.domain ?? {})
    .filter(([, on]) => on)
    .map(([flag]) => DOMAIN_FLAG_MODALITY[flag]);
  return flagged.length ? flagged : [Modality.OTHER];
}

export function toImageRecord(r: FigureRecord): ImageRecord & { pairId: string } {
  return {
    pmid: r.pmid,
    pairId: r.pair_id,
    figLabel: r.fig_label ?? null,
    figId: r.fig_id ?? null,
    graphicRef: r.graphic_ref ?? null,
    fileName: recordFileName(r),
    caption: r.fig_caption ?? '',
    mentions: (r.in_text_mention ?? []).map((m) => m.tokens),
    modalities: recordModalities(r),
  };
}

export function toTurns(r: FigureRecord) {
  return (r.conversations ?? []).map((t) => ({ from: t.from === 'human' ? Speaker.HUMAN : Speaker.GPT, value: t.value }));
}
