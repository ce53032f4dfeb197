import { Field, Float, Int, ObjectType } from 'type-graphql';
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

  @Field({ description: 'The one selector a project uses by default; set at registration or with activateSelectorModel.' })
  @Column('boolean', { default: false })
  active: boolean;

  @Field(() => String, { nullable: true })
  @Column('text', { nullable: true })
  description: string | null;

  /** Where the three files are stored (content-addressed keys), their SHA-256 and sizes. */
  @Column('jsonb', { default: () => "'{}'" })
  files: Record<SelectorFileName, StoredSelectorFile>;

  @Field(() => GraphQLJSONObject, { description: 'Inputs and outputs as ONNX Runtime reported them at registration.' })
  @Column('jsonb', { default: () => "'{}'" })
  signature: Record<string, unknown>;

  @Field(() => Float, { nullable: true, description: 'The score the registration dry run gave its sample.' })
  @Column('double precision', { nullable: true })
  dryRunScore: number | null;

  @Column('uuid', { nullable: true })
  createdById: string | null;

  @Field(() => Float, { description: 'Bytes of model.onnx.' })
  get modelBytes(): number {
    return this.files?.model?.bytes ?? 0;
  }
}

export type SelectorFileName = 'model' | 'tokenizer' | 'manifest';

export interface StoredSelectorFile {
  key: string;
  sha256: string;
  bytes: number;
}
