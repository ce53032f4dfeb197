import { Field, Float, ID, InputType, Int, registerEnumType } from 'type-graphql';
import { IsOptional, MaxLength } from 'class-validator';

export enum TrainingLoss {
  PAIRWISE_LOGISTIC = 'PAIRWISE_LOGISTIC',
  HINGE = 'HINGE',
}
registerEnumType(TrainingLoss, {
  name: 'TrainingLoss',
  description: 'The pairwise ranking loss of a training run.',
  valuesConfig: {
    PAIRWISE_LOGISTIC: { description: 'Bradley-Terry: w · softplus(−(s_preferred − s_rejected)) (the default).' },
    HINGE: { description: 'w · max(0, margin − (s_preferred − s_rejected)); give `margin` (default 1).' },
  },
});

@InputType({
  description:
    'Trains a selector head over a frozen encoder on preference pairs (issue 11): model-rating pairs weigh 1, clinician pairs w. Clinician pairs of held-out images form the validation set. Registers one selector version per w, not activated.',
})
export class StartTrainingRunInput {
  @Field(() => ID, { nullable: true, description: "The encoder; default: the project's most recently registered one." })
  @IsOptional()
  encoderId?: string | null;

  @Field({ description: 'Name of the selector versions the run registers.' })
  @MaxLength(100)
  selectorName: string;

  @Field(() => Float, { nullable: true, description: 'w, the weight of each clinician pair (model pairs weigh 1); default 10.' })
  @IsOptional()
  clinicianWeight?: number | null;

  @Field(() => [Float], { nullable: true, description: 'A sweep: one selector version per w (exclusive with clinicianWeight).' })
  @IsOptional()
  clinicianWeights?: number[] | null;

  @Field(() => Boolean, { nullable: true, defaultValue: true })
  @IsOptional()
  includeModelPairs?: boolean | null;

  @Field(() => Boolean, { nullable: true, defaultValue: true })
  @IsOptional()
  includeClinicianPairs?: boolean | null;

  @Field(() => TrainingLoss, { nullable: true, defaultValue: TrainingLoss.PAIRWISE_LOGISTIC })
  @IsOptional()
  loss?: TrainingLoss | null;

  @Field(() => Float, { nullable: true, description: 'HINGE only: the margin; default 1.' })
  @IsOptional()
  margin?: number | null;

  @Field(() => [Int], { nullable: true, description: 'Hidden layer widths; default [512, 512, 512] (the paper).' })
  @IsOptional()
  hiddenSizes?: number[] | null;

  @Field(() => Int, { nullable: true, description: 'Default 20.' })
  @IsOptional()
  epochs?: number | null;

  @Field(() => Int, { nullable: true, description: 'Pairs per step; default 256.' })
  @IsOptional()
  batchSize?: number | null;

  @Field(() => Float, { nullable: true, description: 'Adam learning rate; default 0.001.' })
  @IsOptional()
  learningRate?: number | null;

  @Field(() => Float, { nullable: true, description: 'Share of the images with clinician pairs held out for validation; default 0.2.' })
  @IsOptional()
  validationFraction?: number | null;

  @Field(() => Int, { nullable: true, description: 'Seeds the split, the initial weights and the shuffles; default 0. Same data, seed and parameters give the same weights.' })
  @IsOptional()
  seed?: number | null;
}
