import { Column, Entity, Index, JoinColumn, ManyToOne } from 'typeorm';
import { ProjectScopedEntity } from '../../platform/entity-base';
import { AnnotationItem } from './annotation-item.entity';

/** A clinician passed on an item: it is never handed to them again, and their slot went back to FREE. */
@Entity({ name: 'annotation_skips' })
@Index(['itemId', 'annotatorId'], { unique: true })
@Index(['campaignId', 'annotatorId'])
export class AnnotationSkip extends ProjectScopedEntity {
  @Column('uuid')
  campaignId: string;

  @Column('uuid')
  itemId: string;

  @Column('uuid')
  annotatorId: string;

  @ManyToOne(() => AnnotationItem, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'item_id' })
  item?: AnnotationItem;
}
