import { Field, Float, Int, ObjectType, registerEnumType } from 'type-graphql';
import { Check, Column, Entity, Index, JoinColumn, ManyToOne } from 'typeorm';
import { Node, ProjectScopedEntity } from '../../platform/entity-base';
import { Candidate } from '../candidates/candidate.entity';

export enum PreferenceSource {
  CLINICIAN = 'CLINICIAN',
  MODEL = 'MODEL',
}
registerEnumType(PreferenceSource, {
  name: 'PreferenceSource',
  description: 'Who made a judgement.',
  valuesConfig: {
    CLINICIAN: { description: 'A project member, with recordPreference.' },
    MODEL: { description: 'The judge model of a rating run.' },
  },
});

export enum PreferenceKind {
  PAIRWISE = 'PAIRWISE',
  RATING = 'RATING',
  ACCEPTANCE = 'ACCEPTANCE',
}
registerEnumType(PreferenceKind, {
  name: 'PreferenceKind',
  description: 'The kind of a judgement; it decides which Preference fields are set.',
  valuesConfig: {
    PAIRWISE: { description: 'A vs B (two answers of a round, or two candidates), or a tie.' },
    RATING: { description: '0-10 score against a versioned rubric, with rationale.' },
    ACCEPTANCE: { description: 'One answer marked acceptable or not.' },
  },
});

export enum PairwiseChoice {
  A = 'A',
  B = 'B',
  TIE = 'TIE',
}
registerEnumType(PairwiseChoice, {
  name: 'PairwiseChoice',
  description: 'The better side of a pairwise judgement.',
  valuesConfig: {
    A: { description: 'Answer A (index 0), or the judged candidate.' },
    B: { description: 'Answer B (index 1), or otherCandidate.' },
    TIE: { description: 'Neither is better; gives no preference pair.' },
  },
});

/** A judgement of a candidate by a clinician or by a model judge. */
@ObjectType({ implements: Node })
@Entity({ name: 'preferences' })
@Index(['projectId', 'createdAt', 'id'])
@Index(['projectId', 'candidateId'])
@Index(['projectId', 'source', 'kind'])
@Index(['projectId', 'annotatorId'])
@Index('idx_preferences_campaign', ['campaignId', 'candidateId'], { where: 'campaign_id IS NOT NULL' })
@Index('uq_preferences_run_item', ['runId', 'candidateId', 'roundIndex', 'answerIndex'], { unique: true, where: 'run_id IS NOT NULL' })
@Check('chk_preference_pairwise', `kind <> 'PAIRWISE' OR choice IS NOT NULL`)
@Check('chk_preference_rating', `kind <> 'RATING' OR (rating IS NOT NULL AND rating >= 0 AND rating <= 10 AND rubric_version IS NOT NULL)`)
@Check('chk_preference_acceptance', `kind <> 'ACCEPTANCE' OR (accepted IS NOT NULL AND answer_index IS NOT NULL)`)
@Check('chk_preference_author', `(source = 'CLINICIAN' AND annotator_id IS NOT NULL) OR (source = 'MODEL' AND judge_model IS NOT NULL)`)
export class Preference extends ProjectScopedEntity {
  @Column('uuid')
  candidateId: string;

  @Field(() => PreferenceSource)
  @Column({ type: 'enum', enum: PreferenceSource, enumName: 'preference_source' })
  source: PreferenceSource;

  @Field(() => PreferenceKind)
  @Column({ type: 'enum', enum: PreferenceKind, enumName: 'preference_kind' })
  kind: PreferenceKind;

  @Column('uuid', { nullable: true })
  annotatorId: string | null;

  @Field(() => String, { nullable: true, description: 'The judge model, for model preferences.' })
  @Column('text', { nullable: true })
  judgeModel: string | null;

  @Column('uuid', { nullable: true })
  runId: string | null;

  @Field(() => Int, { nullable: true, description: 'The QA round judged; null for the whole conversation.' })
  @Column('int', { nullable: true })
  roundIndex: number | null;

  @Column('uuid', { nullable: true, comment: 'pairwise between two candidates: B; null when A/B are the two answers of a round' })
  otherCandidateId: string | null;

  @Field(() => PairwiseChoice, { nullable: true })
  @Column({ type: 'enum', enum: PairwiseChoice, enumName: 'pairwise_choice', nullable: true })
  choice: PairwiseChoice | null;

  @Field(() => Float, { nullable: true })
  @Column('double precision', { nullable: true })
  rating: number | null;

  @Field(() => String, { nullable: true })
  @Column('text', { nullable: true })
  rubricVersion: string | null;

  @Field(() => String, { nullable: true })
  @Column('text', { nullable: true })
  rationale: string | null;

  @Field(() => Int, { nullable: true, description: '0 for answer A (or the only answer), 1 for answer B.' })
  @Column('int', { nullable: true })
  answerIndex: number | null;

  @Field(() => Boolean, { nullable: true })
  @Column('boolean', { nullable: true })
  accepted: boolean | null;

  @Column('uuid', { nullable: true, comment: 'the annotation campaign this clinician judgement was made in' })
  campaignId: string | null;

  @Column('uuid', { nullable: true, comment: 'the annotation submission (version) that wrote this row' })
  annotationSubmissionId: string | null;

  @ManyToOne(() => Candidate, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'candidate_id' })
  candidate?: Candidate;
}
