import { Field, Int, ObjectType } from 'type-graphql';
import { Column, Entity, Index } from 'typeorm';
import { GraphQLJSONObject } from 'graphql-scalars';
import { Node, ProjectScopedEntity } from '../../platform/entity-base';

/** A frozen selection of candidates: the rule that chose them, and a hash of what it chose. */
@ObjectType({ implements: Node })
@Entity({ name: 'datasets' })
@Index(['projectId', 'name', 'version'], { unique: true })
@Index(['projectId', 'createdAt', 'id'])
export class Dataset extends ProjectScopedEntity {
  @Field()
  @Column('text')
  name: string;

  @Field(() => Int)
  @Column('int')
  version: number;

  @Field(() => String, { nullable: true })
  @Column('text', { nullable: true })
  description: string | null;

  @Column('uuid', { nullable: true })
  selectorModelId: string | null;

  @Column('uuid', { nullable: true })
  createdById: string | null;

  @Field(() => GraphQLJSONObject, { description: 'The selection rule as given.' })
  @Column('jsonb')
  rule: Record<string, unknown>;

  @Field(() => Int)
  @Column('int', { default: 0 })
  itemCount: number;

  @Field(() => GraphQLJSONObject)
  @Column('jsonb', { default: () => "'{}'" })
  countsByModality: Record<string, number>;

  @Field(() => String, { nullable: true, description: 'SHA-256 over the ordered items; same rule on same data, same hash.' })
  @Column('char', { length: 64, nullable: true })
  contentHash: string | null;
}
