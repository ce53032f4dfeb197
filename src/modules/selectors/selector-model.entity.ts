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

  /** Trained in the service (issue 11): the encoder the head was trained over; null for uploaded selectors. */
  @Column('uuid', { nullable: true })
  encoderId: string | null;

  /** Trained in the service: the TRAINING run that produced this version. */
  @Column('uuid', { nullable: true })
  trainingRunId: string | null;

  @Field(() => GraphQLJSONObject, {
    nullable: true,
    description: 'For a selector trained in the service: clinicianWeight, pair counts by source, hyperparameters, seed, the training data hash and the encoder. Null for uploaded selectors.',
  })
  @Column('jsonb', { nullable: true })
  training: Record<string, unknown> | null;

  /** Trained in the service: the head's weights, stored on their own (`head.bin`) so scoring can run the head over stored embeddings. */
  @Column('jsonb', { nullable: true })
  head: StoredSelectorHead | null;

  @Field(() => Float, { nullable: true, description: 'The clinician pair weight w this version was trained with; null for uploaded selectors.' })
  get clinicianWeight(): number | null {
    const w = this.training?.clinicianWeight;
    return typeof w === 'number' ? w : null;
  }

  @Field(() => Float, { description: 'Bytes of model.onnx.' })
  get modelBytes(): number {
    return this.files?.model?.bytes ?? 0;
  }
}

export type SelectorFileName = 'model' | 'tokenizer' | 'manifest';

/** A trained head's weights: float32 little-endian tensors in headParameterSpecs order, and the shape that orders them. */
export interface StoredSelectorHead extends StoredSelectorFile {
  inputDim: number;
  hidden: number[];
}

export interface StoredSelectorFile {
  key: string;
  sha256: string;
  bytes: number;
}
