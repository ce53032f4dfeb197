import { Field, ID, InputType, Int } from 'type-graphql';
import { IsOptional, Max, Min, ValidateNested } from 'class-validator';
import { CandidateSelectionInput } from '../candidates/candidates.inputs';

@InputType({ description: 'Scores candidates with a selector model; candidates it already scored are skipped.' })
export class StartScoringRunInput {
  @Field(() => ID, { nullable: true, description: "The selector model; default: the project's active one." })
  @IsOptional()
  selectorModelId?: string | null;

  @Field(() => CandidateSelectionInput, { nullable: true, description: 'Default: every OK candidate of the project.' })
  @IsOptional()
  @ValidateNested()
  candidates?: CandidateSelectionInput | null;

  @Field(() => Int, { nullable: true, description: 'Rows per ONNX Runtime call; default SCORING_BATCH_SIZE.' })
  @IsOptional()
  @Min(1)
  @Max(4096)
  batchSize?: number | null;
}
