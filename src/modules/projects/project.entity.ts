import { Field, ObjectType } from 'type-graphql';
import { Column, Entity, Index } from 'typeorm';
import { Node, TimestampedEntity } from '../../platform/entity-base';

@ObjectType({ implements: Node, description: "A lab's workspace; every other object belongs to one." })
@Entity({ name: 'projects' })
export class Project extends TimestampedEntity {
  @Field()
  @Column('text')
  name: string;

  @Field({ description: 'Short unique handle, lower-case letters, digits and dashes.' })
  @Index({ unique: true })
  @Column('text')
  slug: string;
}
