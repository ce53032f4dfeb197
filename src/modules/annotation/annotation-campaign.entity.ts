import { Field, Int, ObjectType, registerEnumType } from 'type-graphql';
import { Column, Entity, Index } from 'typeorm';
import { Node, ProjectScopedEntity } from '../../platform/entity-base';

export enum AnnotationTaskKind {
  ACCEPTANCE = 'ACCEPTANCE',
  PAIRWISE = 'PAIRWISE',
  RATING = 'RATING',
}
registerEnumType(AnnotationTaskKind, {
  name: 'AnnotationTaskKind',
  description: 'What a clinician does with each item of a campaign; every kind is stored as CLINICIAN preferences linked to the campaign.',
  valuesConfig: {
    ACCEPTANCE: { description: "The paper's task: each answer of each round of a two-answer candidate accepted or rejected, with an optional comment." },
    PAIRWISE: { description: 'A, B or tie: the two answers of one round of a two-answer candidate, or two single-answer candidates of the same image.' },
    RATING: { description: 'A 0-10 rating of each answer of each round of a two-answer candidate.' },
  },
});

export enum AnnotationRouting {
  RANDOM = 'RANDOM',
  ORDERED = 'ORDERED',
  VALUE = 'VALUE',
}
registerEnumType(AnnotationRouting, {
  name: 'AnnotationRouting',
  description: 'The order in which items are handed out.',
  valuesConfig: {
    RANDOM: { description: 'A shuffled order, seeded by the campaign id: the same for every call and every process.' },
    ORDERED: { description: 'The order of the source: dataset rank, or creation order of the candidates.' },
    VALUE: { description: 'Items whose clinician judgement is worth most first (priority computed once, at creation).' },
  },
});

/** Where a campaign's items came from, as given at creation (global ids), kept for the record. */
export interface AnnotationItemSource {
  candidateFilter?: Record<string, unknown> | null;
  generationRunId?: string | null;
  datasetId?: string | null;
}

/**
 * A piece of clinician work: a frozen set of items, each to be judged by `overlap` different
 * clinicians, handed out with leases. Items never change after creation.
 */
@ObjectType({ implements: Node })
@Entity({ name: 'annotation_campaigns' })
@Index(['projectId', 'createdAt', 'id'])
export class AnnotationCampaign extends ProjectScopedEntity {
  @Field()
  @Column('text')
  name: string;

  @Field(() => String, { nullable: true, description: 'Markdown shown to clinicians.' })
  @Column('text', { nullable: true })
  guidelines: string | null;

  @Field(() => AnnotationTaskKind)
  @Column({ type: 'enum', enum: AnnotationTaskKind, enumName: 'annotation_task_kind' })
  taskKind: AnnotationTaskKind;

  @Field(() => Int, { description: 'How many different clinicians must submit each item.' })
  @Column('int')
  overlap: number;

  @Column('uuid', { array: true, nullable: true, comment: 'user ids allowed to annotate; null: every CLINICIAN member' })
  annotatorIds: string[] | null;

  @Field(() => Int)
  @Column('int')
  leaseSeconds: number;

  @Field({ description: 'Clinicians never see the submissions of others.' })
  @Column('boolean')
  blind: boolean;

  @Field(() => AnnotationRouting)
  @Column({ type: 'enum', enum: AnnotationRouting, enumName: 'annotation_routing' })
  routing: AnnotationRouting;

  @Column('jsonb')
  itemSource: AnnotationItemSource;

  @Column('int')
  itemCount: number;

  @Column('uuid')
  createdById: string;
}
