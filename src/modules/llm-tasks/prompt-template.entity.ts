import { Field, ObjectType, registerEnumType } from 'type-graphql';
import { Column, CreateDateColumn, Entity, PrimaryColumn } from 'typeorm';
import { GraphQLDateTime } from 'graphql-scalars';

export enum PromptKind {
  GENERATION = 'GENERATION',
  RATING = 'RATING',
}
registerEnumType(PromptKind, {
  name: 'PromptKind',
  description: 'What a prompt template is for.',
  valuesConfig: {
    GENERATION: { description: 'Writes candidate conversations for an image (generation runs).' },
    RATING: { description: 'Asks the judge to rate an answer 0-10 (rating runs).' },
  },
});

/**
 * A prompt as sent, under an immutable version. Templates are written in code and recorded here on
 * first use; candidates and model ratings keep the version they were made with.
 */
@ObjectType({ description: 'A versioned prompt template; its text never changes under the same version.' })
@Entity({ name: 'prompt_templates' })
export class PromptTemplate {
  @Field({ description: 'For example `generation/v1`.' })
  @PrimaryColumn('text')
  version: string;

  @Field(() => PromptKind)
  @Column({ type: 'enum', enum: PromptKind, enumName: 'prompt_kind' })
  kind: PromptKind;

  @Field({ description: 'The system message.' })
  @Column('text')
  system: string;

  @Field({ description: 'The instructions that follow the demonstrations and the target.' })
  @Column('text')
  instructions: string;

  @Field({ description: 'SHA-256 of kind, system and instructions.' })
  @Column('char', { length: 64 })
  contentHash: string;

  @Field(() => GraphQLDateTime)
  @CreateDateColumn({ type: 'timestamptz', precision: 3 })
  createdAt: Date;
}
