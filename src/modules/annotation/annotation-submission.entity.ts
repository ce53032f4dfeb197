import { Field, Float, Int, ObjectType } from 'type-graphql';
import { Column, Entity, Index, JoinColumn, ManyToOne } from 'typeorm';
import { Node, ProjectScopedEntity } from '../../platform/entity-base';
import { PairwiseChoice } from '../preferences/preference.entity';
import { AnnotationItem } from './annotation-item.entity';

@ObjectType({ description: 'One answer of one round accepted or rejected.' })
export class AnswerAcceptance {
  @Field(() => Int) roundIndex: number;
  @Field(() => Int, { description: '0 for answer A, 1 for answer B.' }) answerIndex: number;
  @Field() accepted: boolean;
}

@ObjectType({ description: 'One answer of one round rated 0-10.' })
export class AnswerRating {
  @Field(() => Int) roundIndex: number;
  @Field(() => Int, { description: '0 for answer A, 1 for answer B.' }) answerIndex: number;
  @Field(() => Float) rating: number;
}

/**
 * A clinician's judgement of an item. Editing adds a version and keeps the earlier ones: the
 * history is here, while the preferences table holds only what the latest version says.
 */
@ObjectType({ implements: Node })
@Entity({ name: 'annotation_submissions' })
@Index(['itemId', 'annotatorId', 'version'], { unique: true })
@Index(['campaignId', 'annotatorId'])
export class AnnotationSubmission extends ProjectScopedEntity {
  @Column('uuid')
  campaignId: string;

  @Column('uuid')
  itemId: string;

  @Column('uuid')
  annotatorId: string;

  @Field(() => Int, { description: '1 for the first submission, +1 for each edit.' })
  @Column('int')
  version: number;

  @Field(() => String, { nullable: true })
  @Column('text', { nullable: true })
  comment: string | null;

  @Field(() => [AnswerAcceptance], { nullable: true, description: 'ACCEPTANCE.' })
  @Column('jsonb', { nullable: true })
  acceptance: AnswerAcceptance[] | null;

  @Field(() => PairwiseChoice, { nullable: true, description: 'PAIRWISE.' })
  @Column({ type: 'enum', enum: PairwiseChoice, enumName: 'pairwise_choice', nullable: true })
  choice: PairwiseChoice | null;

  @Field(() => Int, { nullable: true, description: 'PAIRWISE of two answers: the round judged.' })
  @Column('int', { nullable: true })
  roundIndex: number | null;

  @Field(() => [AnswerRating], { nullable: true, description: 'RATING.' })
  @Column('jsonb', { nullable: true })
  ratings: AnswerRating[] | null;

  @ManyToOne(() => AnnotationItem, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'item_id' })
  item?: AnnotationItem;
}
