import { ArrayMaxSize, IsOptional, Max, MaxLength, Min } from 'class-validator';
import { Field, ID, InputType, Int } from 'type-graphql';

@InputType({
  description:
    "Measures selectors (uploaded or trained) and the model judge against the same held-out clinician pairs. Held out: a training run's validation images (trainingRunId), or the given images, or every clinician pair of the project.",
})
export class StartEvaluationRunInput {
  @Field(() => [ID], { nullable: true, description: "Selector models to measure; default: the project's active one (none when includeJudge alone is wanted: pass [])." })
  @IsOptional()
  @ArrayMaxSize(50)
  selectorIds?: string[] | null;

  @Field(() => Boolean, { defaultValue: true, description: "Also measure the model judge's ratings of the same answers (from rating runs)." })
  includeJudge: boolean;

  @Field(() => String, { nullable: true, description: 'The judge model whose ratings to measure; default: the judge with the most ratings.' })
  @IsOptional()
  @MaxLength(200)
  judgeModel?: string | null;

  @Field(() => ID, { nullable: true, description: "Evaluate on this TRAINING run's held-out clinician pairs (its validation images). Exclusive with imageIds." })
  @IsOptional()
  trainingRunId?: string | null;

  @Field(() => [ID], { nullable: true, description: 'Evaluate on the clinician pairs whose images are all among these. Exclusive with trainingRunId.' })
  @IsOptional()
  @ArrayMaxSize(100_000)
  imageIds?: string[] | null;

  @Field(() => Int, { defaultValue: 1000, description: 'Bootstrap resamples (of whole images) for the 95 % intervals.' })
  @Min(1)
  @Max(100_000)
  bootstrapSamples: number;

  @Field(() => Int, { defaultValue: 0, description: 'Bootstrap seed: same pairs, scores and seed give the same intervals.' })
  @Min(0)
  @Max(2 ** 31 - 1)
  seed: number;
}
