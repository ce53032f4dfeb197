import { Field, Int, ObjectType, registerEnumType } from 'type-graphql';

export enum Speaker {
  HUMAN = 'human',
  GPT = 'gpt',
}
registerEnumType(Speaker, { name: 'Speaker', description: 'Who speaks a conversation turn (LLaVA `from`).', valuesConfig: { HUMAN: { description: 'The user asking.' }, GPT: { description: 'The assistant answering.' } } });

/** One message in LLaVA's conversation format. */
@ObjectType()
export class ConversationTurn {
  @Field(() => Speaker) from: Speaker;
  @Field() value: string;
}

/** Stored shape of a question with one answer, or two alternative answers for clinician annotation. */
export interface StoredRound {
  question: string;
  answers: string[];
}

@ObjectType({ description: 'One question with its answer, and the alternative answer in the two-answer form.' })
export class QaRound {
  @Field(() => Int) index: number;
  @Field() question: string;
  @Field() answer: string;
  @Field(() => String, { nullable: true }) alternativeAnswer: string | null;
}

export function roundsToTurns(rounds: StoredRound[]): ConversationTurn[] {
  return rounds.flatMap((r) => [
    { from: Speaker.HUMAN, value: r.question },
    { from: Speaker.GPT, value: r.answers[0] ?? '' },
  ]);
}

export function toQaRounds(rounds: StoredRound[]): QaRound[] {
  return rounds.map((r, index) => ({ index, question: r.question, answer: r.answers[0] ?? '', alternativeAnswer: r.answers[1] ?? null }));
}
