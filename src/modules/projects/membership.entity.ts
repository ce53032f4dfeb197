import { Field, ObjectType } from 'type-graphql';
import { Column, Entity, Index, JoinColumn, ManyToOne } from 'typeorm';
import { Node, ProjectScopedEntity } from '../../platform/entity-base';
import { Role } from './role';
import { User } from './user.entity';
import { Project } from './project.entity';

@ObjectType({ implements: Node, description: "A user's role in a project." })
@Entity({ name: 'memberships' })
@Index(['projectId', 'userId'], { unique: true })
@Index(['userId'])
export class Membership extends ProjectScopedEntity {
  @Column('uuid')
  userId: string;

  @Field(() => Role)
  @Column({ type: 'enum', enum: Role, enumName: 'role' })
  role: Role;

  /** The name this project knows the member by (shown as User.displayName in this project). */
  @Column('text')
  displayName: string;

  @ManyToOne(() => User, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'user_id' })
  user?: User;

  @ManyToOne(() => Project, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'project_id' })
  project?: Project;
}
