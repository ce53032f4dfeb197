import type { ChatRequest } from '../../platform/llm';
import { buildRatingMessages, FigureText } from '../llm-tasks/prompt';
import { RATING } from '../llm-tasks/prompt-templates';
import { ModelParameters, samplingFields } from '../llm-tasks/model-call-params';

/**
 * The reply the judge is asked for, as OpenAI structured output (strict JSON schema): an integer
 * score from 0 to 10 (an enum, which strict mode supports everywhere) and a rationale. The prompt
 * asks for the same JSON, so a server that ignores `response_format` still mostly sends it, and
 * the parser reads text replies too.
 */
export const RATING_RESPONSE_FORMAT = {
  type: 'json_schema',
  json_schema: {
    name: 'answer_rating',
    strict: true,
    schema: {
      type: 'object',
      properties: {
        score: { type: 'integer', enum: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10], description: 'The rating of the answer, 0 (worst) to 10 (best).' },
        rationale: { type: 'string', description: 'One or two sentences that justify the score.' },
      },
      required: ['score', 'rationale'],
      additionalProperties: false,
    },
  },
} as const satisfies ChatRequest['response_format'];

/**
 * The chat request rating one answer. It always asks for structured output; the LLM client drops
 * `response_format` when LLM_STRUCTURED_OUTPUT=off or the server refused it.
 */
export function buildRatingRequest(figure: FigureText, question: string, answer: string, imageDataUrl: string, modelParameters: ModelParameters): ChatRequest {
  return {
    messages: buildRatingMessages(RATING, figure, question, answer, imageDataUrl),
    ...samplingFields(modelParameters),
    response_format: RATING_RESPONSE_FORMAT,
  };
}
