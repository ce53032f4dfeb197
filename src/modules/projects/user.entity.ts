import { Field, ObjectType } from 'type-graphql';
import { Column, Entity, Index } from 'typeorm';
import { Node, TimestampedEntity } from '../../platform/entity-base';

@ObjectType({ implements: Node, description: 'A person or a service account; roles come from memberships.' })
@Entity({ name: 'users' })
export class User extends TimestampedEntity {
  @Field()
  @Index({ unique: true })
  @Column('text', { comment: 'stored lower-case' })
  email: string;

  @Field()
  @Column('text')
  displayName: string;
}
