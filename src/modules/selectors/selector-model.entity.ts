import { Field, Int, ObjectType } from 'type-graphql';
import { Column, Entity, Index } from 'typeorm';
import { GraphQLJSONObject } from 'graphql-scalars';
import { Node, ProjectScopedEntity } from '../../platform/entity-base';

/** A registered ONNX selector (model.onnx + tokenizer.json + selector.json), versioned by name. */
@ObjectType({ implements: Node })
@Entity({ name: 'selector_models' })
@Index(['projectId', 'name', 'version'], { unique: true })
@Index(['projectId'], { unique: true, where: 'active' })
@Index(['projectId', 'createdAt', 'id'])
export class SelectorModel extends ProjectScopedEntity {
  @Field()
  @Column('text')
  name: string;

  @Field(() => Int)
  @Column('int')
  version: number;

  @Field({ description: "SHA-256 over the model's files." })
  @Column('char', { length: 64 })
  filesHash: string;

  @Field(() => GraphQLJSONObject, { description: 'The selector.json manifest (DESIGN.md §5).' })
  @Column('jsonb')
  manifest: Record<string, unknown>;

  @Field(() => GraphQLJSONObject, { nullable: true, description: 'Alignment rate, AUC, mean rank, MAP on held-out clinician pairs.' })
  @Column('jsonb', { nullable: true })
  metrics: Record<string, unknown> | null;

  @Field()
  @Column('boolean', { default: false })
  active: boolean;
}
