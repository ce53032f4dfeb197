import { Field, ID, InputType } from 'type-graphql';
import { ArrayMaxSize, ArrayMinSize, IsOptional, MaxLength } from 'class-validator';
import { WebhookEventType } from './webhook-endpoint.entity';
import { MAX_URL_LENGTH } from './endpoint-url';

@InputType()
export class CreateWebhookEndpointInput {
  @Field({ description: 'An http(s) URL on a public address (private addresses only where the server allows them).' })
  @MaxLength(MAX_URL_LENGTH)
  url: string;

  @Field(() => [WebhookEventType])
  @ArrayMinSize(1)
  @ArrayMaxSize(10)
  events: WebhookEventType[];

  @Field(() => String, { nullable: true })
  @IsOptional()
  @MaxLength(500)
  description?: string | null;
}

@InputType({ description: 'Only the fields given change. Enabling a disabled endpoint resets its failure streak.' })
export class UpdateWebhookEndpointInput {
  @Field(() => ID) id: string;

  @Field(() => String, { nullable: true })
  @IsOptional()
  @MaxLength(MAX_URL_LENGTH)
  url?: string | null;

  @Field(() => [WebhookEventType], { nullable: true })
  @IsOptional()
  @ArrayMinSize(1)
  @ArrayMaxSize(10)
  events?: WebhookEventType[] | null;

  @Field(() => String, { nullable: true })
  @IsOptional()
  @MaxLength(500)
  description?: string | null;

  @Field(() => Boolean, { nullable: true })
  @IsOptional()
  enabled?: boolean | null;
}

@InputType()
export class WebhookEndpointIdInput {
  @Field(() => ID) id: string;
}

@InputType()
export class RedeliverWebhookInput {
  @Field(() => ID, { description: 'A WebhookDelivery that has ended (SUCCEEDED or FAILED).' }) deliveryId: string;
}
