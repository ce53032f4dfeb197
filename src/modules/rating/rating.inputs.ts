import { Field, ID, InputType } from 'type-graphql';
import { ArrayMaxSize, IsOptional, ValidateNested } from 'class-validator';
import { ModelParametersInput, RunLimitsInput } from '../llm-tasks/llm-tasks.inputs';

@InputType({ description: 'Which candidates the judge rates: those of a generation run, or explicit ids. Only OK candidates are rated.' })
export class StartRatingRunInput {
  @Field(() => ID, { nullable: true, description: 'A generation run whose candidates are rated.' })
  @IsOptional()
  generationRunId?: string | null;

  @Field(() => [ID], { nullable: true })
  @IsOptional()
  @ArrayMaxSize(10000)
  candidateIds?: string[] | null;

  @Field(() => ModelParametersInput, { nullable: true })
  @IsOptional()
  @ValidateNested()
  model?: ModelParametersInput | null;

  @Field(() => RunLimitsInput, { nullable: true })
  @IsOptional()
  @ValidateNested()
  limits?: RunLimitsInput | null;
}
