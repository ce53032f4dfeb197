import { Field, Int, ObjectType, registerEnumType } from 'type-graphql';
import { Column, Entity, Index, JoinColumn, ManyToOne } from 'typeorm';
import { Node, ProjectScopedEntity } from '../../platform/entity-base';
import { Candidate } from '../candidates/candidate.entity';
import { AnnotationCampaign } from './annotation-campaign.entity';

export enum AnnotationItemStatus {
  PENDING = 'PENDING',
  IN_PROGRESS = 'IN_PROGRESS',
  COMPLETED = 'COMPLETED',
}
registerEnumType(AnnotationItemStatus, {
  name: 'AnnotationItemStatus',
  description: 'Where an item stands; computed from its lease slots, so an expired lease turns an item back to PENDING by itself.',
  valuesConfig: {
    PENDING: { description: 'No submission and no unexpired lease.' },
    IN_PROGRESS: { description: 'Some submissions or unexpired leases, fewer submissions than the overlap.' },
    COMPLETED: { description: 'As many submissions as the overlap.' },
  },
});

/**
 * One thing to judge: a candidate (ACCEPTANCE, RATING), one round of a two-answer candidate
 * (PAIRWISE of answers) or two candidates of one image (PAIRWISE of candidates).
 */
@ObjectType({ implements: Node })
@Entity({ name: 'annotation_items' })
@Index(['campaignId', 'ordinal'], { unique: true })
@Index(['projectId', 'candidateId'])
export class AnnotationItem extends ProjectScopedEntity {
  @Column('uuid')
  campaignId: string;

  @Column('uuid')
  candidateId: string;

  @Column('uuid', { nullable: true, comment: 'PAIRWISE between two candidates: candidate B' })
  otherCandidateId: string | null;

  @Field(() => Int, { nullable: true, description: 'PAIRWISE of the two answers of a round: the round judged.' })
  @Column('int', { nullable: true })
  roundIndex: number | null;

  @Field(() => Int, { description: 'Position in the source order (ORDERED routing), from 0.' })
  @Column('int')
  ordinal: number;

  @Column('double precision', { comment: 'RANDOM routing: a hash of the campaign and item, stable across calls and processes' })
  randomKey: number;

  @Column('double precision', { default: 0, comment: 'VALUE routing: highest first (routing-value.ts)' })
  priority: number;

  @ManyToOne(() => AnnotationCampaign, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'campaign_id' })
  campaign?: AnnotationCampaign;

  @ManyToOne(() => Candidate, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'candidate_id' })
  candidate?: Candidate;
}
