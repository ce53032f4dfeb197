import { ArgsType, Field, Float, ID, InputType, Int } from 'type-graphql';
import { IsOptional, IsString, Max, MaxLength, Min } from 'class-validator';
import { PageArgs } from '../../platform/pagination';
import { PairwiseChoice, PreferenceKind, PreferenceSource } from './preference.entity';

@InputType()
export class PreferenceFilter {
  @Field(() => [PreferenceSource], { nullable: true }) @IsOptional() sources?: PreferenceSource[] | null;
  @Field(() => [PreferenceKind], { nullable: true }) @IsOptional() kinds?: PreferenceKind[] | null;
  @Field(() => ID, { nullable: true, description: 'A User id.' }) @IsOptional() annotatorId?: string | null;
  @Field(() => ID, { nullable: true }) @IsOptional() candidateId?: string | null;
}

@ArgsType()
export class PreferencesArgs extends PageArgs {
  @Field(() => PreferenceFilter, { nullable: true }) @IsOptional() filter?: PreferenceFilter | null;
}

@InputType({ description: "A clinician's judgement; fields needed depend on `kind`." })
export class RecordPreferenceInput {
  @Field(() => ID) candidateId: string;
  @Field(() => PreferenceKind) kind: PreferenceKind;

  @Field(() => Int, { nullable: true, description: 'The QA round judged (0-based); required for answer-level judgements.' })
  @IsOptional()
  @Min(0)
  @Max(99)
  roundIndex?: number | null;

  @Field(() => PairwiseChoice, { nullable: true, description: 'PAIRWISE: which is better, or TIE.' })
  @IsOptional()
  choice?: PairwiseChoice | null;

  @Field(() => ID, { nullable: true, description: 'PAIRWISE between two candidates: candidate B. Without it, A and B are the two answers of `roundIndex`.' })
  @IsOptional()
  otherCandidateId?: string | null;

  @Field(() => Float, { nullable: true, description: 'RATING: 0 to 10.' })
  @IsOptional()
  @Min(0)
  @Max(10)
  rating?: number | null;

  @Field(() => String, { nullable: true }) @IsOptional() @IsString() @MaxLength(64) rubricVersion?: string | null;
  @Field(() => String, { nullable: true }) @IsOptional() @IsString() @MaxLength(10000) rationale?: string | null;

  @Field(() => Int, { nullable: true, description: 'ACCEPTANCE (required) and RATING (optional, with roundIndex): the answer judged, 0 for answer A (or the only answer), 1 for answer B. Refused for PAIRWISE.' })
  @IsOptional()
  @Min(0)
  @Max(1)
  answerIndex?: number | null;

  @Field(() => Boolean, { nullable: true, description: 'ACCEPTANCE: whether the answer is acceptable.' })
  @IsOptional()
  accepted?: boolean | null;
}
