import { ObjectType } from 'type-graphql';
import { Column, Entity, Index } from 'typeorm';
import { ProjectScopedEntity } from '../../platform/entity-base';

/**
 * Provenance of a demonstration promoted from a campaign item: which campaign, which clinicians'
 * judgements (the latest submission of each, and the preferences they wrote) made it. Kept here, not
 * on the demonstration, because the annotation module owns what its judgements mean.
 */
@ObjectType({ description: 'Where a promoted demonstration came from.' })
@Entity({ name: 'annotation_promotions' })
@Index(['itemId'], { unique: true })
@Index(['projectId', 'demonstrationId'])
export class AnnotationPromotion extends ProjectScopedEntity {
  @Column('uuid')
  campaignId: string;

  @Column('uuid')
  itemId: string;

  @Column('uuid')
  demonstrationId: string;

  @Column('uuid', { array: true })
  submissionIds: string[];

  @Column('uuid', { array: true })
  preferenceIds: string[];

  @Column('uuid')
  promotedById: string;
}
