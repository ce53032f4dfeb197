import { Field, Int, ObjectType, registerEnumType } from 'type-graphql';
import { Column, Entity, Index } from 'typeorm';
import { GraphQLDateTime } from 'graphql-scalars';
import { Node, ProjectScopedEntity } from '../../platform/entity-base';

/** Events a partner can subscribe to; the wire name (`type` in the body) is the enum's value. */
export enum WebhookEventType {
  RUN_FINISHED = 'run.finished',
  DATASET_CREATED = 'dataset.created',
  ANNOTATION_CAMPAIGN_COMPLETED = 'annotation.campaign.completed',
}
registerEnumType(WebhookEventType, {
  name: 'WebhookEventType',
  description: 'Events a webhook endpoint can subscribe to.',
  valuesConfig: {
    RUN_FINISHED: { description: '`run.finished`: a run reached SUCCEEDED, FAILED or CANCELLED.' },
    DATASET_CREATED: { description: '`dataset.created`: a dataset version was frozen.' },
    ANNOTATION_CAMPAIGN_COMPLETED: { description: '`annotation.campaign.completed`: every item of an annotation campaign has its overlap of submissions.' },
  },
});

/**
 * Where a project wants its events delivered (Standard Webhooks). The secret signs every delivery;
 * after a rotation the previous secret keeps signing too until its grace period ends, so a partner
 * can switch without missing a verification.
 */
@ObjectType({ implements: Node, description: 'A URL that receives signed event deliveries (Standard Webhooks).' })
@Entity({ name: 'webhook_endpoints' })
@Index(['projectId', 'createdAt', 'id'])
export class WebhookEndpoint extends ProjectScopedEntity {
  @Field()
  @Column('text')
  url: string;

  @Field(() => String, { nullable: true })
  @Column('text', { nullable: true })
  description: string | null;

  @Field(() => [WebhookEventType])
  @Column('text', { array: true })
  events: WebhookEventType[];

  @Field({ description: 'Disabled endpoints get no new deliveries: set by hand, by a 410 Gone answer, or after a failure streak.' })
  @Column('boolean', { default: true })
  enabled: boolean;

  @Field(() => String, { nullable: true, description: 'Why the service disabled the endpoint, when it did.' })
  @Column('text', { nullable: true })
  disabledReason: string | null;

  /** `whsec_<base64>`; returned to the caller only when created or rotated. */
  @Column('text')
  secret: string;

  @Column('text', { nullable: true })
  previousSecret: string | null;

  @Field(() => GraphQLDateTime, { nullable: true, description: 'Until when deliveries also carry a signature with the secret before the last rotation.' })
  @Column('timestamptz', { nullable: true })
  previousSecretExpiresAt: Date | null;

  @Field(() => Int, { description: 'Deliveries in a row that failed every attempt; reset by a success.' })
  @Column('int', { default: 0 })
  consecutiveFailedDeliveries: number;
}
