import { Field, Float, Int, ObjectType, registerEnumType } from 'type-graphql';
import { Column, Entity, Index, JoinColumn, ManyToOne } from 'typeorm';
import { Node, ProjectScopedEntity } from '../../platform/entity-base';
import { Image } from '../images/image.entity';
import { QaRound, StoredRound, ConversationTurn, roundsToTurns, toQaRounds } from './conversation';

export enum CandidateStatus {
  OK = 'OK',
  PARSE_FAILED = 'PARSE_FAILED',
  REFUSED = 'REFUSED',
  FAILED = 'FAILED',
}
registerEnumType(CandidateStatus, {
  name: 'CandidateStatus',
  description: 'What became of one generated candidate.',
  valuesConfig: {
    OK: { description: 'The reply parsed into enough rounds; the candidate can be rated, scored and exported.' },
    PARSE_FAILED: { description: 'The reply had too few rounds or could not be read; the raw reply is kept (see reparseRun).' },
    REFUSED: { description: 'The model refused; the raw reply is kept.' },
    FAILED: { description: 'No reply: the item ran out of attempts (see failureReason).' },
  },
});

export enum CandidateForm {
  SINGLE_ANSWER = 'SINGLE_ANSWER',
  TWO_ANSWERS = 'TWO_ANSWERS',
}
registerEnumType(CandidateForm, {
  name: 'CandidateForm',
  description: 'How many answers each question of a candidate has.',
  valuesConfig: { SINGLE_ANSWER: { description: 'One answer per question, as the reference generates.' }, TWO_ANSWERS: { description: 'Each question has answers A and B, for clinician annotation.' } },
});

@ObjectType({ description: 'How a candidate was produced.' })
export class CandidateProvenance {
  @Field(() => String, { nullable: true }) model: string | null;
  @Field(() => String, { nullable: true }) promptTemplateVersion: string | null;
  @Field(() => Int) promptTokens: number;
  @Field(() => Int) completionTokens: number;
  @Field(() => Int, { nullable: true }) latencyMs: number | null;
  @Field(() => Int) attempts: number;
  @Field(() => Float, { description: 'Estimated cost in US dollars.' }) costUsd: number;
}

/** A generated multi-turn conversation about one image. One per (run, image, sample index). */
@ObjectType({ implements: Node })
@Entity({ name: 'candidates' })
@Index(['projectId', 'createdAt', 'id'])
@Index(['projectId', 'imageId'])
@Index(['projectId', 'runId'])
@Index(['projectId', 'status'])
@Index(['runId', 'imageId', 'sampleIndex'], { unique: true, where: 'run_id IS NOT NULL' })
export class Candidate extends ProjectScopedEntity {
  @Column('uuid')
  imageId: string;

  @Column('uuid', { nullable: true })
  runId: string | null;

  @Field(() => Int)
  @Column('int', { default: 0 })
  sampleIndex: number;

  @Field(() => CandidateStatus)
  @Column({ type: 'enum', enum: CandidateStatus, enumName: 'candidate_status' })
  status: CandidateStatus;

  @Field(() => CandidateForm)
  @Column({ type: 'enum', enum: CandidateForm, enumName: 'candidate_form', default: CandidateForm.SINGLE_ANSWER })
  form: CandidateForm;

  @Field(() => String, { nullable: true, description: "The model's reply as received, kept for failed parses." })
  @Column('text', { nullable: true })
  rawOutput: string | null;

  @Column('jsonb', { default: () => "'[]'" })
  rounds: StoredRound[];

  @Field(() => String, { nullable: true })
  @Column('text', { nullable: true })
  failureReason: string | null;

  @Column('text', { nullable: true })
  model: string | null;

  @Column('text', { nullable: true })
  promptTemplateVersion: string | null;

  @Column('uuid', { array: true, default: () => "'{}'" })
  demonstrationIds: string[];

  @Column('int', { default: 0 })
  promptTokens: number;

  @Column('int', { default: 0 })
  completionTokens: number;

  @Column('int', { nullable: true })
  latencyMs: number | null;

  @Column('int', { default: 1 })
  attempts: number;

  @Column('numeric', { precision: 12, scale: 6, default: 0, transformer: { to: (v: number) => v, from: (v: string) => Number(v) } })
  costUsd: number;

  @ManyToOne(() => Image, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'image_id' })
  image?: Image;

  @Field(() => [QaRound], { name: 'rounds' })
  get qaRounds(): QaRound[] {
    return toQaRounds(this.rounds);
  }

  @Field(() => [ConversationTurn], { description: 'LLaVA conversation, first answer of each round.' })
  get turns(): ConversationTurn[] {
    return roundsToTurns(this.rounds);
  }

  @Field(() => CandidateProvenance)
  get provenance(): CandidateProvenance {
    const { model, promptTemplateVersion, promptTokens, completionTokens, latencyMs, attempts, costUsd } = this;
    return { model, promptTemplateVersion, promptTokens, completionTokens, latencyMs, attempts, costUsd };
  }
}
