import { Field, Float, ID, InputType, Int } from 'type-graphql';
import { ArrayMaxSize, IsOptional, Max, MaxLength, Min, ValidateNested } from 'class-validator';
import { CandidateSelectionInput } from '../candidates/candidates.inputs';

@InputType({
  description:
    'A selection rule: rank the candidates a selector scored, keep the top fraction, the top k or those at or above a minimum score (minScore combines with either), optionally joined with the items of other datasets.',
})
export class CreateDatasetInput {
  @Field({ description: 'Versions are numbered per name.' })
  @MaxLength(100)
  name: string;

  @Field(() => String, { nullable: true })
  @IsOptional()
  @MaxLength(2000)
  description?: string | null;

  @Field(() => ID, { nullable: true, description: "The selector whose scores rank the candidates; default: the project's active one." })
  @IsOptional()
  selectorModelId?: string | null;

  @Field(() => Float, { nullable: true, description: 'Keep this fraction (0 to 1] of the scored candidates, best first; the paper released 0.8.' })
  @IsOptional()
  @Min(0.000001)
  @Max(1)
  topFraction?: number | null;

  @Field(() => Int, { nullable: true, description: 'Keep the k best-scored candidates.' })
  @IsOptional()
  @Min(1)
  topK?: number | null;

  @Field(() => Float, { nullable: true, description: 'Keep only candidates scored at or above this.' })
  @IsOptional()
  minScore?: number | null;

  @Field(() => CandidateSelectionInput, { nullable: true, description: 'Which candidates compete; default: every OK candidate.' })
  @IsOptional()
  @ValidateNested()
  candidates?: CandidateSelectionInput | null;

  @Field(() => [ID], { nullable: true, description: 'Add the items of these datasets (a union); all items are ranked by this rule’s selector.' })
  @IsOptional()
  @ArrayMaxSize(20)
  unionDatasetIds?: string[] | null;
}
