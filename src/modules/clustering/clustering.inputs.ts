import { Field, Float, InputType, Int, ObjectType } from 'type-graphql';
import { IsOptional, Max, Min, ValidateNested } from 'class-validator';
import { RunLimitsInput } from '../llm-tasks/llm-tasks.inputs';
import { ImageSelectionInput } from '../images/images.inputs';

@InputType()
export class StartClusteringRunInput {
  @Field(() => ImageSelectionInput, { nullable: true, description: 'Which images; every image of the project when omitted.' })
  @IsOptional()
  @ValidateNested()
  images?: ImageSelectionInput | null;

  @Field(() => Int, { defaultValue: 60, description: 'Number of clusters (the reference uses 60); capped at the number of distinct images.' })
  @Min(1)
  @Max(1000)
  k: number;

  @Field(() => Int, { nullable: true, description: 'k-means seed; random when omitted (the run records it).' })
  @IsOptional()
  @Min(0)
  seed?: number | null;

  @Field(() => Float, { defaultValue: 1, description: 'Weight of the caption + mentions embedding in the joined features.' })
  @Min(0)
  @Max(10)
  textWeight: number;

  @Field(() => Float, { defaultValue: 1, description: 'Weight of the image features in the joined features.' })
  @Min(0)
  @Max(10)
  imageWeight: number;

  @Field(() => RunLimitsInput, { nullable: true })
  @IsOptional()
  @ValidateNested()
  limits?: RunLimitsInput | null;
}

@ObjectType({ description: 'How many images a diversity cluster holds.' })
export class ClusterSize {
  @Field(() => Int) clusterId: number;
  @Field(() => Int) size: number;
}
