import { Field, InputType, Int } from 'type-graphql';
import { IsOptional, Max, Min, ValidateNested } from 'class-validator';
import { CandidateForm } from '../candidates/candidate.entity';
import { DemonstrationStrategy } from '../llm-tasks/prompt';
import { ModelParametersInput, RunLimitsInput } from '../llm-tasks/llm-tasks.inputs';
import { ImageSelectionInput } from '../images/images.inputs';


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
