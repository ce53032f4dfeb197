import { Field, ObjectType } from 'type-graphql';
import { Column, Entity, Index, JoinColumn, ManyToOne } from 'typeorm';
import { GraphQLDateTime } from 'graphql-scalars';
import { Node, ProjectScopedEntity } from '../../platform/entity-base';
import { User } from './user.entity';
import { Project } from './project.entity';

/**
 * A key acts for one user in one project, with that user's role there. Only a SHA-256 of the secret
 * is stored: the keys are 256-bit random, so a slow hash adds nothing and a fast one keeps the
 * per-request lookup a single indexed read.
 */
@ObjectType({ implements: Node })
@Entity({ name: 'api_keys' })
@Index(['projectId', 'createdAt'])
export class ApiKey extends ProjectScopedEntity {
  @Column('uuid')
  userId: string;

  @Field()
  @Column('text')
  name: string;

  @Field({ description: 'The first characters of the key, to tell keys apart.' })
  @Column('text')
  prefix: string;

  @Index({ unique: true })
  @Column('text', { select: false })
  secretHash: string;

  @Field(() => GraphQLDateTime, { nullable: true })
  @Column({ type: 'timestamptz', nullable: true, precision: 3 })
  lastUsedAt: Date | null;

  @Field(() => GraphQLDateTime, { nullable: true })
  @Column({ type: 'timestamptz', nullable: true, precision: 3 })
  revokedAt: Date | null;

  @ManyToOne(() => User, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'user_id' })
  user?: User;

  @ManyToOne(() => Project, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'project_id' })
  project?: Project;
}
