import { Field, Int, ObjectType, registerEnumType } from 'type-graphql';
import { Column, Entity, Index, JoinColumn, ManyToOne } from 'typeorm';
import { GraphQLDateTime, GraphQLJSONObject } from 'graphql-scalars';
import { Node, ProjectScopedEntity } from '../../platform/entity-base';
import { toGlobalId } from '../../platform/ids';
import { WebhookEndpoint, WebhookEventType } from './webhook-endpoint.entity';

export enum WebhookDeliveryStatus {
  PENDING = 'PENDING',
  SUCCEEDED = 'SUCCEEDED',
  FAILED = 'FAILED',
}
registerEnumType(WebhookDeliveryStatus, {
  name: 'WebhookDeliveryStatus',
  description: 'Where the delivery of one event to one endpoint stands.',
  valuesConfig: {
    PENDING: { description: 'An attempt is queued (now or at nextAttemptAt).' },
    SUCCEEDED: { description: 'The endpoint answered 2xx.' },
    FAILED: { description: 'Every scheduled attempt failed, the endpoint answered 410, or it was disabled.' },
  },
});

/**
 * The outbox: one row per event and endpoint, written in the transaction of the change that caused
 * the event where there is one. Its id is the `webhook-id` of every attempt, so receivers can
 * deduplicate retries and redeliveries.
 */
@ObjectType({ implements: Node, description: 'One event sent to one endpoint, with every attempt.' })
@Entity({ name: 'webhook_deliveries' })
@Index(['endpointId', 'eventKey'], { unique: true })
@Index(['projectId', 'endpointId', 'createdAt', 'id'])
export class WebhookDelivery extends ProjectScopedEntity {
  @Column('uuid')
  endpointId: string;

  @Field(() => WebhookEventType)
  @Column('text')
  eventType: WebhookEventType;

  /** What the event is about, e.g. `run.finished:<run id>`: the same event never queues twice. */
  @Column('text')
  eventKey: string;

  @Field(() => GraphQLJSONObject, { description: 'The body sent: `{ type, timestamp, data }`.' })
  @Column('jsonb')
  payload: Record<string, unknown>;

  @Field(() => WebhookDeliveryStatus)
  @Column('text', { default: WebhookDeliveryStatus.PENDING })
  status: WebhookDeliveryStatus;

  @Field(() => Int)
  @Column('int', { default: 0 })
  attemptCount: number;

  @Field(() => GraphQLDateTime, { nullable: true })
  @Column('timestamptz', { nullable: true })
  nextAttemptAt: Date | null;

  @ManyToOne(() => WebhookEndpoint, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'endpoint_id' })
  endpoint?: WebhookEndpoint;

  @Field({ description: 'The `webhook-id` header of every attempt.' })
  get webhookId(): string {
    return webhookMessageId(this.id);
  }
}

export const webhookMessageId = (deliveryId: string) => `msg_${deliveryId}`;

export enum WebhookAttemptOutcome {
  SUCCEEDED = 'SUCCEEDED',
  FAILED = 'FAILED',
  REFUSED = 'REFUSED',
}
registerEnumType(WebhookAttemptOutcome, {
  name: 'WebhookAttemptOutcome',
  description: 'How one delivery attempt ended.',
  valuesConfig: {
    SUCCEEDED: { description: 'A 2xx answer.' },
    FAILED: { description: 'Another status, a timeout or a network error.' },
    REFUSED: { description: 'Not sent: the address is private, loopback or link-local (server-side request forgery protection).' },
  },
});

/** One HTTP attempt of a delivery, recorded before the next is scheduled. */
@ObjectType({ implements: Node })
@Entity({ name: 'webhook_attempts' })
@Index(['deliveryId', 'attemptNumber'], { unique: true })
@Index(['projectId', 'deliveryId', 'createdAt', 'id'])
export class WebhookAttempt extends ProjectScopedEntity {
  @Column('uuid')
  deliveryId: string;

  @Field(() => Int)
  @Column('int')
  attemptNumber: number;

  @Field({ description: 'True for an attempt asked for with redeliverWebhook.' })
  @Column('boolean', { default: false })
  manual: boolean;

  @Field(() => WebhookAttemptOutcome)
  @Column('text')
  outcome: WebhookAttemptOutcome;

  @Field(() => Int, { nullable: true })
  @Column('int', { nullable: true })
  statusCode: number | null;

  @Field(() => Int)
  @Column('int')
  latencyMs: number;

  @Field(() => String, { nullable: true, description: 'The first KiB of the response body.' })
  @Column('text', { nullable: true })
  responseExcerpt: string | null;

  @Field(() => String, { nullable: true })
  @Column('text', { nullable: true })
  error: string | null;

  @Field(() => GraphQLDateTime, { nullable: true, description: 'When the next attempt was scheduled for, if one was.' })
  @Column('timestamptz', { nullable: true })
  nextAttemptAt: Date | null;

  @ManyToOne(() => WebhookDelivery, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'delivery_id' })
  delivery?: WebhookDelivery;
}

export const deliveryGlobalId = (id: string) => toGlobalId('WebhookDelivery', id);
