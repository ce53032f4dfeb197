import { Field, Float, ObjectType } from 'type-graphql';
import { Column, Entity, Index, JoinColumn, ManyToOne } from 'typeorm';
import { Node, ProjectScopedEntity } from '../../platform/entity-base';
import { Candidate } from '../candidates/candidate.entity';
import { SelectorModel } from '../selectors/selector-model.entity';

/** A selector's score for a candidate; exactly one per (candidate, selector model). */
@ObjectType({ implements: Node })
@Entity({ name: 'scores' })
@Index(['candidateId', 'selectorModelId'], { unique: true })
@Index(['projectId', 'selectorModelId', 'value', 'candidateId'])
export class Score extends ProjectScopedEntity {
  @Column('uuid')
  candidateId: string;

  @Column('uuid')
  selectorModelId: string;

  @Field(() => Float, { description: 'Higher is better.' })
  @Column('double precision')
  value: number;

  @Column('uuid', { nullable: true })
  runId: string | null;

  @ManyToOne(() => Candidate, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'candidate_id' })
  candidate?: Candidate;

  @ManyToOne(() => SelectorModel, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'selector_model_id' })
  selectorModel?: SelectorModel;
}
