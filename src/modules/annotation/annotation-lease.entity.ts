import { Column, Entity, Index, JoinColumn, ManyToOne } from 'typeorm';
import { ProjectScopedEntity } from '../../platform/entity-base';
import { AnnotationItem } from './annotation-item.entity';

export enum AnnotationSlotState {
  FREE = 'FREE',
  LEASED = 'LEASED',
  SUBMITTED = 'SUBMITTED',
}

/**
 * One of the `overlap` slots of an item. A lease takes a FREE slot (or a LEASED one whose lease
 * expired) and a submission fills it for good. Because an item has exactly `overlap` slots, no
 * interleaving of requests can hand out more than the overlap (submitted + unexpired leases): the
 * race-free part of leasing is a single-row update of a slot, rechecked by Postgres under its row lock.
 */
@Entity({ name: 'annotation_leases' })
@Index(['itemId', 'slot'], { unique: true })
@Index('uq_annotation_leases_item_annotator', ['itemId', 'annotatorId'], { unique: true, where: 'annotator_id IS NOT NULL' })
@Index(['campaignId', 'annotatorId', 'state'])
@Index(['campaignId', 'state'])
@Index('idx_annotation_leases_hand_out', ['campaignId', 'handOutRank', 'slot'], { where: `state <> 'SUBMITTED'` })
export class AnnotationLease extends ProjectScopedEntity {
  @Column('uuid')
  campaignId: string;

  @Column('uuid')
  itemId: string;

  @Column('int')
  slot: number;

  @Column('int', { default: 0, comment: "the item's place in the campaign's hand-out order (its routing), from 1; see AnnotationService.rerank" })
  handOutRank: number;

  @Column({ type: 'enum', enum: AnnotationSlotState, enumName: 'annotation_slot_state', default: AnnotationSlotState.FREE })
  state: AnnotationSlotState;

  @Column('uuid', { nullable: true, comment: 'the clinician holding (LEASED) or having filled (SUBMITTED) the slot' })
  annotatorId: string | null;

  @Column({ type: 'timestamptz', precision: 3, nullable: true })
  leasedAt: Date | null;

  @Column({ type: 'timestamptz', precision: 3, nullable: true })
  expiresAt: Date | null;

  @Column({ type: 'timestamptz', precision: 3, nullable: true })
  submittedAt: Date | null;

  @ManyToOne(() => AnnotationItem, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'item_id' })
  item?: AnnotationItem;
}
