import { Field, Float, Int, ObjectType } from 'type-graphql';
import { Column, Entity, Index, JoinColumn, ManyToOne } from 'typeorm';
import { Node, ProjectScopedEntity } from '../../platform/entity-base';
import { Dataset } from './dataset.entity';
import { Candidate } from '../candidates/candidate.entity';

@ObjectType({ implements: Node })
@Entity({ name: 'dataset_items' })
@Index(['datasetId', 'rank'], { unique: true })
@Index(['datasetId', 'candidateId'], { unique: true })
export class DatasetItem extends ProjectScopedEntity {
  @Column('uuid')
  datasetId: string;

  @Column('uuid')
  candidateId: string;

  @Field(() => Int, { description: '1 is the best-scored item.' })
  @Column('int')
  rank: number;

  @Field(() => Float, { nullable: true })
  @Column('double precision', { nullable: true })
  score: number | null;

  @ManyToOne(() => Dataset, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'dataset_id' })
  dataset?: Dataset;

  @ManyToOne(() => Candidate, { onDelete: 'RESTRICT' })
  @JoinColumn({ name: 'candidate_id' })
  candidate?: Candidate;
}
