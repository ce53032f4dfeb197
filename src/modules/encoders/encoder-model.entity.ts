import { Field, Int, ObjectType } from 'type-graphql';
import { Column, Entity, Index } from 'typeorm';
import { GraphQLJSONObject } from 'graphql-scalars';
import { Node, ProjectScopedEntity } from '../../platform/entity-base';
import type { EncoderFileName } from './encoder-manifest';

/** A registered frozen encoder (model.onnx + tokenizer.json + encoder.json), versioned by name: what selectors are trained over (issue 11). */
@ObjectType({ implements: Node })
@Entity({ name: 'encoder_models' })
@Index(['projectId', 'name', 'version'], { unique: true })
@Index(['projectId', 'createdAt', 'id'])
export class EncoderModel extends ProjectScopedEntity {
  @Field()
  @Column('text')
  name: string;

  @Field(() => Int)
  @Column('int')
  version: number;

  @Field({ description: "SHA-256 over the encoder's files." })
  @Column('char', { length: 64 })
  filesHash: string;

  @Field(() => GraphQLJSONObject, { description: 'The encoder.json manifest (DESIGN.md §5).' })
  @Column('jsonb')
  manifest: Record<string, unknown>;

  @Field(() => Int, { description: 'Di, the width of image_embeds.' })
  @Column('int')
  imageDim: number;

  @Field(() => Int, { description: 'Dt, the width of text_embeds.' })
  @Column('int')
  textDim: number;

  @Field(() => String, { nullable: true })
  @Column('text', { nullable: true })
  description: string | null;

  /** Where the three files are stored (content-addressed keys), their SHA-256 and sizes. */
  @Column('jsonb', { default: () => "'{}'" })
  files: Record<EncoderFileName, StoredEncoderFile>;

  @Field(() => GraphQLJSONObject, { description: 'Inputs and outputs as ONNX Runtime reported them at registration.' })
  @Column('jsonb', { default: () => "'{}'" })
  signature: Record<string, unknown>;

  @Column('uuid', { nullable: true })
  createdById: string | null;
}

export interface StoredEncoderFile {
  key: string;
  sha256: string;
  bytes: number;
}
