import { Field, Float, ID, InputType, Int } from 'type-graphql';
import { ArrayMaxSize, IsOptional, Max, Min, ValidateNested } from 'class-validator';
import { ImageFilter } from '../images/images.inputs';
import { CandidateForm } from '../candidates/candidate.entity';
import { DemonstrationStrategy } from './prompt';

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

@InputType({ description: 'Which images: explicit ids, or a filter (an empty filter selects every image).' })
export class ImageSelectionInput {
  @Field(() => [ID], { nullable: true })
  @IsOptional()
  @ArrayMaxSize(10000)
  imageIds?: string[] | null;

  @Field(() => ImageFilter, { nullable: true })
  @IsOptional()
  @ValidateNested()
  filter?: ImageFilter | null;
}

@InputType()
export class StartGenerationRunInput {
  @Field(() => ImageSelectionInput)
  @ValidateNested()
  images: ImageSelectionInput;

  @Field(() => Int, { defaultValue: 1, description: 'Candidates per image.' })
  @Min(1)
  @Max(20)
  samplesPerImage: number;

  @Field(() => CandidateForm, { defaultValue: CandidateForm.SINGLE_ANSWER })
  form: CandidateForm;

  @Field(() => Int, { defaultValue: 4, description: 'Fewer parsed rounds make the candidate PARSE_FAILED.' })
  @Min(1)
  @Max(20)
  minRounds: number;

  @Field(() => Int, { defaultValue: 5 })
  @Min(0)
  @Max(20)
  demonstrationsPerPrompt: number;

  @Field(() => DemonstrationStrategy, { defaultValue: DemonstrationStrategy.PER_MODALITY })
  demonstrationStrategy: DemonstrationStrategy;

  @Field(() => Int, { nullable: true, description: 'Makes the demonstration draws reproducible; random when omitted (the run records it).' })
  @IsOptional()
  @Min(0)
  seed?: number | null;

  @Field(() => ModelParametersInput, { nullable: true })
  @IsOptional()
  @ValidateNested()
  model?: ModelParametersInput | null;

  @Field(() => RunLimitsInput, { nullable: true })
  @IsOptional()
  @ValidateNested()
  limits?: RunLimitsInput | null;
}
