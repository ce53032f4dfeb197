import { Field, ID, InterfaceType, ObjectType } from 'type-graphql';
import { Column, CreateDateColumn, PrimaryGeneratedColumn, UpdateDateColumn } from 'typeorm';
import { GraphQLDateTime } from 'graphql-scalars';
import { toGlobalId } from './ids';

/** Relay's Node: every object has an opaque global id and can be re-fetched with `node(id:)`. */
@InterfaceType('Node', { resolveType: (value: object) => value.constructor.name })
export abstract class Node {
  @Field(() => ID, { name: 'id', description: 'Opaque global id.' })
  globalId: string;
}

/**
 * Columns every table has. Timestamps keep millisecond precision so that a cursor built from a
 * JavaScript Date finds its row again.
 * Decorated so that subclasses inherit its fields; type-graphql emits only types the schema reaches.
 */
@ObjectType()
export abstract class TimestampedEntity {
  @PrimaryGeneratedColumn('uuid')
  id: string;

  @Field(() => GraphQLDateTime)
  @CreateDateColumn({ type: 'timestamptz', precision: 3 })
  createdAt: Date;

  @Field(() => GraphQLDateTime)
  @UpdateDateColumn({ type: 'timestamptz', precision: 3 })
  updatedAt: Date;

  get globalId(): string {
    return toGlobalId(this.constructor.name, this.id);
  }
}

/** A row that belongs to one project; services always filter on `projectId`. */
@ObjectType()
export abstract class ProjectScopedEntity extends TimestampedEntity {
  @Column('uuid')
  projectId: string;
}
