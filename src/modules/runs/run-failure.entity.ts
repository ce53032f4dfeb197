import { Field, Int, ObjectType } from 'type-graphql';
import { Column, Entity, Index, JoinColumn, ManyToOne } from 'typeorm';
import { Node, ProjectScopedEntity } from '../../platform/entity-base';
import { Run } from './run.entity';

/**
 * An item a run gave up on, with why and what the model said. Generation keeps its failures as
 * candidates (FAILED, PARSE_FAILED, REFUSED); the other kinds of run record them here.
 */
@ObjectType({ implements: Node })
@Entity({ name: 'run_failures' })
@Index(['runId', 'itemKey'], { unique: true })
@Index(['projectId', 'runId', 'createdAt', 'id'])
export class RunFailure extends ProjectScopedEntity {
  @Column('uuid')
  runId: string;

  @Field({ description: 'What failed, e.g. `candidate:<id>:round:2:answer:0` or `image:<id>`.' })
  @Column('text')
  itemKey: string;

  @Field()
  @Column('text')
  reason: string;

  @Field(() => String, { nullable: true, description: "The model's reply, when there was one." })
  @Column('text', { nullable: true })
  rawOutput: string | null;

  @Field(() => Int)
  @Column('int', { default: 1 })
  attempts: number;

  @ManyToOne(() => Run, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'run_id' })
  run?: Run;
}
