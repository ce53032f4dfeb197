import { Field, ObjectType } from 'type-graphql';
import { Column, Entity, Index, JoinColumn, ManyToOne } from 'typeorm';
import { Node, ProjectScopedEntity } from '../../platform/entity-base';
import { Image } from '../images/image.entity';
import { ConversationTurn } from '../candidates/conversation';

/** A clinician-accepted conversation used as a few-shot example for generation. */
@ObjectType({ implements: Node })
@Entity({ name: 'demonstrations' })
@Index(['projectId', 'createdAt', 'id'])
@Index(['projectId', 'active'])
@Index(['projectId', 'imageId', 'conversationHash'], { unique: true })
export class Demonstration extends ProjectScopedEntity {
  @Column('uuid')
  imageId: string;

  @Field(() => [ConversationTurn])
  @Column('jsonb')
  turns: ConversationTurn[];

  @Column('char', { length: 64, comment: 'sha256 of the turns; re-importing the same conversation is a no-op' })
  conversationHash: string;

  @Field()
  @Column('boolean', { default: true })
  active: boolean;

  @Column('uuid', { nullable: true })
  selectedById: string | null;

  @Column('uuid', { nullable: true })
  sourceCandidateId: string | null;

  @Field(() => String, { nullable: true, description: 'Id of the record in the file it was imported from.' })
  @Column('text', { nullable: true })
  externalId: string | null;

  @ManyToOne(() => Image, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'image_id' })
  image?: Image;
}
