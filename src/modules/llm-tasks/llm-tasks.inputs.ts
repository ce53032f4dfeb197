import { Field, Float, InputType, Int } from 'type-graphql';
import { IsOptional, Max, Min } from 'class-validator';

@InputType({ description: 'Limits for one run, on top of the service-wide ones.' })
export class RunLimitsInput {
  @Field(() => Int, { defaultValue: 8, description: 'Requests in flight at once for this run.' })
  @Min(1)
  @Max(256)
  concurrency: number;

  @Field(() => Int, { nullable: true, description: 'Requests per minute for this run; never exceeded.' })
  @IsOptional()
  @Min(1)
  requestsPerMinute?: number | null;

  @Field(() => Int, { nullable: true, description: 'Tokens (prompt + completion) per minute for this run.' })
  @IsOptional()
  @Min(100)
  tokensPerMinute?: number | null;
}

@InputType({ description: 'Sampling parameters passed to the model.' })
export class ModelParametersInput {
  @Field(() => Float, { defaultValue: 0.7 }) @Min(0) @Max(2) temperature: number;
  @Field(() => Float, { nullable: true }) @IsOptional() @Min(0) @Max(1) topP?: number | null;
  @Field(() => Int, { defaultValue: 2000, description: 'Most tokens the model may write per reply.' }) @Min(16) @Max(32000) maxTokens: number;
}
