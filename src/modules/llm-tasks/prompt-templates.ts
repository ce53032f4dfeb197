import crypto from 'node:crypto';
import { DataSource } from 'typeorm';
import { PromptKind, PromptTemplate } from './prompt-template.entity';

export interface TemplateText {
  version: string;
  kind: PromptKind;
  system: string;
  instructions: string;
}

const RUBRIC = `You are an AI assistant that specialises in biomedical figures. You are shown one figure from a biomedical research article, with its caption and the sentences of the article that refer to it. Write a conversation between a user who asks about the figure and an assistant who answers as someone looking at the figure.

Guidelines:
- Extract visual detail first: structures, findings, panels, labels, arrows, colours, scale. Relate what is seen to the caption and to the in-text mentions.
- Vary the questions: what the figure shows, where a finding is, how panels compare, what a finding suggests, how the image was acquired or stained.
- Write at least {min_rounds} rounds; one round is one question from the user followed by the answer.
- Give no medical advice and avoid overconfidence: say so when the figure alone cannot settle a question.
- Start with the user's question. Answer as if seeing the image; do not cite the caption or the article as your source.`;

const SINGLE_FORMAT = `Format: each question on its own line starting with "User:", each answer on the following line starting with "Assistant:". Answers may take several lines. Write nothing before the first "User:" line.`;
const TWO_FORMAT = `Format: each question on its own line starting with "User:", then two alternative answers, one starting with "Answer A:" and one starting with "Answer B:". The two answers should differ in content or emphasis so that a clinician can prefer one. Write nothing before the first "User:" line.`;

export const GENERATION_SINGLE: TemplateText = {
  version: 'generation/single-answer/v1',
  kind: PromptKind.GENERATION,
  system: `${RUBRIC}\n\n${SINGLE_FORMAT}`,
  instructions: 'Write the conversation about this figure now.',
};

export const GENERATION_TWO_ANSWERS: TemplateText = {
  version: 'generation/two-answers/v1',
  kind: PromptKind.GENERATION,
  system: `${RUBRIC}\n\n${TWO_FORMAT}`,
  instructions: 'Write the conversation about this figure now, with answers A and B for every question.',
};

export const RATING: TemplateText = {
  version: 'rating/v1',
  kind: PromptKind.RATING,
  system: `You judge question-answer pairs written about biomedical figures, to choose data for fine-tuning a biomedical vision-language assistant. You see the figure, its caption, the in-text mentions, one question and one answer.

Rate the answer from 0 to 10 considering: relevance of the question to the figure; its value for fine-tuning; how well the answer addresses the question; accuracy with respect to the figure, caption and mentions; usefulness to a clinician or researcher; use of what is visible in the image; clarity; depth; precision, without overconfidence.`,
  instructions: 'Reply with JSON only: {"score": <number from 0 to 10>, "rationale": "<one or two sentences>"}.',
};

export const TEMPLATES = [GENERATION_SINGLE, GENERATION_TWO_ANSWERS, RATING];

export function contentHash(t: TemplateText): string {
  return crypto.createHash('sha256').update(`${t.kind}\n${t.system}\n${t.instructions}`).digest('hex');
}

/**
 * Records the templates the code ships. A stored version whose text differs means someone edited a
 * template without bumping its version; that is refused, since candidates point to versions.
 */
export async function recordTemplates(ds: DataSource, templates: TemplateText[] = TEMPLATES): Promise<void> {
  const repo = ds.getRepository(PromptTemplate);
  for (const t of templates) {
    const hash = contentHash(t);
    await repo.createQueryBuilder().insert().values({ ...t, contentHash: hash }).orIgnore().updateEntity(false).execute();
    const stored = await repo.findOneByOrFail({ version: t.version });
    if (stored.contentHash !== hash) throw new Error(`Prompt template ${t.version} changed without a new version; give it a new version`);
  }
}

export async function listTemplates(ds: DataSource): Promise<PromptTemplate[]> {
  return ds.getRepository(PromptTemplate).find({ order: { version: 'ASC' } });
}
