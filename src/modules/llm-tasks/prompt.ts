import type { ChatCompletionMessageParam } from 'openai/resources/chat/completions';
import { registerEnumType } from 'type-graphql';
import { Modality } from '../images/modality';
import { ConversationTurn, Speaker } from '../candidates/conversation';
import type { PoolDemonstration } from '../demonstrations/demonstrations.service';
import { TemplateText } from './prompt-templates';
import { permutation, seededRandomFromText } from '../../platform/random';

export type { PoolDemonstration };

export enum DemonstrationStrategy {
  PER_MODALITY = 'PER_MODALITY',
  PER_CLUSTER = 'PER_CLUSTER',
  RANDOM = 'RANDOM',
}
registerEnumType(DemonstrationStrategy, {
  name: 'DemonstrationStrategy',
  description: 'How a generation run draws the demonstrations of each prompt.',
  valuesConfig: {
    PER_MODALITY: { description: 'One demonstration per modality in turn, as the reference code draws them.' },
    PER_CLUSTER: { description: 'One demonstration per diversity cluster in turn.' },
    RANDOM: { description: 'Demonstrations drawn uniformly.' },
  },
});

export interface FigureText {
  caption: string;
  mentions: string[];
}


/** `items` in a seeded Fisher-Yates order (the same draws as platform/random's permutation). */
function shuffled<T>(items: readonly T[], random: () => number): T[] {
  return Array.from(permutation(items.length, random), (i) => items[i]);
}

function groupKey(d: PoolDemonstration, strategy: DemonstrationStrategy): string {
  if (strategy === DemonstrationStrategy.PER_MODALITY) return d.modalities[0] ?? Modality.OTHER;
  if (strategy === DemonstrationStrategy.PER_CLUSTER) return d.clusterId === null ? `none:${d.id}` : `cluster:${d.clusterId}`;
  return d.id;
}

/**
 * Draws `count` distinct demonstrations, never from the target image itself. Grouped strategies
 * take one from each group in a shuffled group order, then go round again while groups have more.
 */
export function drawDemonstrations(pool: readonly PoolDemonstration[], strategy: DemonstrationStrategy, count: number, seed: string, targetImageId: string): PoolDemonstration[] {
  // The same run seed, image and sample always draw the same demonstrations.
  const random = seededRandomFromText(seed);
  const eligible = pool.filter((d) => d.imageId !== targetImageId);
  const groups = new Map<string, PoolDemonstration[]>();
  for (const d of eligible) {
    const key = groupKey(d, strategy);
    groups.set(key, [...(groups.get(key) ?? []), d]);
  }
  const queues = shuffled([...groups.keys()].sort(), random).map((key) => shuffled(groups.get(key)!, random));
  const drawn: PoolDemonstration[] = [];
  while (drawn.length < count && queues.some((q) => q.length)) {
    for (const queue of queues) {
      const next = queue.shift();
      if (next && drawn.length < count) drawn.push(next);
    }
  }
  return drawn;
}

export function figureText(f: FigureText): string {
  const mentions = f.mentions.filter((m) => m.trim()).map((m) => `- ${m.trim()}`);
  return [`Caption: ${f.caption.trim()}`, mentions.length ? `In-text mentions:\n${mentions.join('\n')}` : 'In-text mentions: none'].join('\n');
}

export function conversationText(turns: ConversationTurn[]): string {
  return turns.map((t) => `${t.from === Speaker.HUMAN ? 'User' : 'Assistant'}: ${t.value.replace(/^<image>\s*/, '').trim()}`).join('\n');
}

/**
 * The generation prompt: the system rubric, each demonstration as a text-only exchange (figure
 * text from the user, the clinician-accepted conversation from the assistant), then the target
 * figure's text and the image itself.
 */
export function buildGenerationMessages(template: TemplateText, minRounds: number, demonstrations: PoolDemonstration[], target: FigureText, imageDataUrl: string): ChatCompletionMessageParam[] {
  const messages: ChatCompletionMessageParam[] = [{ role: 'system', content: template.system.replace('{min_rounds}', String(minRounds)) }];
  for (const demo of demonstrations) {
    messages.push({ role: 'user', content: figureText(demo) });
    messages.push({ role: 'assistant', content: conversationText(demo.turns) });
  }
  messages.push({
    role: 'user',
    content: [
      { type: 'text', text: `${figureText(target)}\n\n${template.instructions}` },
      { type: 'image_url', image_url: { url: imageDataUrl } },
    ],
  });
  return messages;
}

/** The judge prompt for one answer to one question about a figure. */
export function buildRatingMessages(template: TemplateText, figure: FigureText, question: string, answer: string, imageDataUrl: string): ChatCompletionMessageParam[] {
  return [
    { role: 'system', content: template.system },
    {
      role: 'user',
      content: [
        { type: 'text', text: `${figureText(figure)}\n\nQuestion: ${question.replace(/^<image>\s*/, '').trim()}\n\nAnswer: ${answer.trim()}\n\n${template.instructions}` },
        { type: 'image_url', image_url: { url: imageDataUrl } },
      ],
    },
  ];
}
