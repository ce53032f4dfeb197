import { Arg, Args, Authorized, Ctx, Field, FieldResolver, ID, Mutation, ObjectType, Query, Resolver, Root } from 'type-graphql';
import type { WebhooksService } from './webhooks.service';
import { ConnectionType, connectionOf, PageArgs, toConnection } from '../../platform/pagination';
import { attemptCountByDeliveryLoader, attemptPagesByDeliveryLoader } from './webhooks.loaders';
import { expectGlobalId } from '../../platform/ids';
import { asPayload, UserError } from '../../platform/user-errors';
import type { GraphQLContext } from '../projects/graphql-context';
import { Role } from '../projects/role';
import { WebhookEndpoint } from './webhook-endpoint.entity';
import { WebhookAttempt, WebhookDelivery } from './webhook-delivery.entity';
import { CreateWebhookEndpointInput, RedeliverWebhookInput, UpdateWebhookEndpointInput, WebhookEndpointIdInput } from './webhooks.inputs';

@ObjectType()
export class WebhookEndpointConnection extends ConnectionType(WebhookEndpoint, 'WebhookEndpoint') {}

@ObjectType()
export class WebhookDeliveryConnection extends ConnectionType(WebhookDelivery, 'WebhookDelivery') {}

@ObjectType()
export class WebhookAttemptConnection extends ConnectionType(WebhookAttempt, 'WebhookAttempt') {}

@ObjectType()
export class WebhookEndpointPayload {
  @Field(() => WebhookEndpoint, { nullable: true }) endpoint?: WebhookEndpoint | null;
  @Field(() => [UserError]) userErrors: UserError[];
}

@ObjectType({ description: 'The endpoint and its signing secret, shown this once.' })
export class WebhookSecretPayload {
  @Field(() => WebhookEndpoint, { nullable: true }) endpoint?: WebhookEndpoint | null;
  @Field(() => String, { nullable: true, description: '`whsec_...`: verify deliveries with it (Standard Webhooks). It is not shown again.' }) secret?: string | null;
  @Field(() => [UserError]) userErrors: UserError[];
}

@ObjectType()
export class DeleteWebhookEndpointPayload {
  @Field(() => ID, { nullable: true }) deletedEndpointId?: string | null;
  @Field(() => [UserError]) userErrors: UserError[];
}

@ObjectType()
export class RedeliverWebhookPayload {
  @Field(() => WebhookDelivery, { nullable: true }) delivery?: WebhookDelivery | null;
  @Field(() => [UserError]) userErrors: UserError[];
}

const endpointId = (id: string) => expectGlobalId(id, 'WebhookEndpoint', 'input.id');

/** Webhook endpoints and their delivery log: OWNER only, since endpoints hold signing secrets. */
@Resolver(() => WebhookEndpoint)
export class WebhooksResolver {
  constructor(private readonly webhooksService: WebhooksService) {}

  @Authorized(Role.OWNER)
  @Query(() => WebhookEndpointConnection, { description: 'Webhook endpoints of the project, newest first (OWNER).' })
  async webhookEndpoints(@Ctx() { ctx }: GraphQLContext, @Args() page: PageArgs): Promise<WebhookEndpointConnection> {
    return connectionOf(WebhookEndpointConnection, await this.webhooksService.listEndpoints(ctx, page));
  }

  @Authorized(Role.OWNER)
  @Mutation(() => WebhookSecretPayload, { description: 'Registers an endpoint; the answer carries its signing secret, once.' })
  async createWebhookEndpoint(@Ctx() { ctx }: GraphQLContext, @Arg('input') input: CreateWebhookEndpointInput): Promise<WebhookSecretPayload> {
    return asPayload(() => this.webhooksService.createEndpoint(ctx, input));
  }

  @Authorized(Role.OWNER)
  @Mutation(() => WebhookEndpointPayload)
  async updateWebhookEndpoint(@Ctx() { ctx }: GraphQLContext, @Arg('input') input: UpdateWebhookEndpointInput): Promise<WebhookEndpointPayload> {
    return asPayload(async () => ({ endpoint: await this.webhooksService.updateEndpoint(ctx, endpointId(input.id), input) }));
  }

  @Authorized(Role.OWNER)
  @Mutation(() => WebhookSecretPayload, { description: 'A new signing secret, shown once; the previous one keeps signing too for a grace period (24 h by default).' })
  async rotateWebhookSecret(@Ctx() { ctx }: GraphQLContext, @Arg('input') input: WebhookEndpointIdInput): Promise<WebhookSecretPayload> {
    return asPayload(() => this.webhooksService.rotateSecret(ctx, endpointId(input.id)));
  }

  @Authorized(Role.OWNER)
  @Mutation(() => DeleteWebhookEndpointPayload, { description: 'Deletes the endpoint and its delivery log.' })
  async deleteWebhookEndpoint(@Ctx() { ctx }: GraphQLContext, @Arg('input') input: WebhookEndpointIdInput): Promise<DeleteWebhookEndpointPayload> {
    return asPayload(async () => ({ deletedEndpointId: await this.webhooksService.deleteEndpoint(ctx, endpointId(input.id)) }));
  }

  @Authorized(Role.OWNER)
  @Mutation(() => RedeliverWebhookPayload, { description: 'Sends an ended delivery again now, with the same webhook-id; one attempt, logged like the others.' })
  async redeliverWebhook(@Ctx() { ctx }: GraphQLContext, @Arg('input') input: RedeliverWebhookInput): Promise<RedeliverWebhookPayload> {
    return asPayload(async () => ({ delivery: await this.webhooksService.redeliver(ctx, expectGlobalId(input.deliveryId, 'WebhookDelivery', 'input.deliveryId')) }));
  }

  @FieldResolver(() => WebhookDeliveryConnection, { description: 'Events sent to this endpoint, newest first.' })
  async deliveries(@Root() endpoint: WebhookEndpoint, @Ctx() { ctx }: GraphQLContext, @Args() page: PageArgs): Promise<WebhookDeliveryConnection> {
    return connectionOf(WebhookDeliveryConnection, await this.webhooksService.deliveries(ctx, endpoint.id, page));
  }
}

@Resolver(() => WebhookDelivery)
export class WebhookDeliveriesResolver {
  constructor(private readonly webhooksService: WebhooksService) {}

  @FieldResolver(() => WebhookAttemptConnection, { description: 'Attempts in the order they were made: status, latency, response excerpt, error, when the next was scheduled.' })
  async attempts(@Root() delivery: WebhookDelivery, @Ctx() { ctx }: GraphQLContext, @Args() page: PageArgs): Promise<WebhookAttemptConnection> {
    const rows = await attemptPagesByDeliveryLoader(ctx, this.webhooksService, page).load(delivery.id);
    const count = () => attemptCountByDeliveryLoader(ctx, this.webhooksService).load(delivery.id);
    return connectionOf(WebhookAttemptConnection, toConnection(rows, page, (a) => ({ value: a.createdAt, id: a.id }), count));
  }
}
