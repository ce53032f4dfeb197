import { ArgsType, Field, Float, ID, InputType, registerEnumType } from 'type-graphql';
import { IsOptional, ValidateNested } from 'class-validator';
import { PageArgs, SortDirection } from '../../platform/pagination';
import { CandidateStatus } from './candidate.entity';

@InputType({ description: 'Candidates scored by one selector model within a range.' })
export class ScoreRangeFilter {
  @Field(() => ID) selectorModelId: string;
  @Field(() => Float, { nullable: true }) @IsOptional() min?: number | null;
  @Field(() => Float, { nullable: true }) @IsOptional() max?: number | null;
}

@InputType()
export class CandidateFilter {
  @Field(() => ID, { nullable: true }) @IsOptional() imageId?: string | null;
  @Field(() => ID, { nullable: true }) @IsOptional() runId?: string | null;
  @Field(() => [CandidateStatus], { nullable: true }) @IsOptional() statuses?: CandidateStatus[] | null;
  @Field(() => ScoreRangeFilter, { nullable: true }) @IsOptional() @ValidateNested() score?: ScoreRangeFilter | null;
  @Field(() => Boolean, { nullable: true, description: 'With (true) or without (false) any preference.' })
  @IsOptional()
  hasPreferences?: boolean | null;
}

export enum CandidateSortField {
  CREATED_AT = 'CREATED_AT',
  SCORE = 'SCORE',
}
registerEnumType(CandidateSortField, {
  name: 'CandidateSortField',
  valuesConfig: { SCORE: { description: 'By the score of `orderBy.selectorModelId`; unscored candidates are left out.' } },
});

@InputType()
export class CandidateOrder {
  @Field(() => CandidateSortField, { defaultValue: CandidateSortField.CREATED_AT }) field: CandidateSortField;
  @Field(() => SortDirection, { defaultValue: SortDirection.DESC }) direction: SortDirection;
  @Field(() => ID, { nullable: true, description: 'Required when sorting by SCORE.' }) @IsOptional() selectorModelId?: string | null;
}

@ArgsType()
export class CandidatesArgs extends PageArgs {
  @Field(() => CandidateFilter, { nullable: true }) @IsOptional() @ValidateNested() filter?: CandidateFilter | null;
  @Field(() => CandidateOrder, { nullable: true }) @IsOptional() @ValidateNested() orderBy?: CandidateOrder | null;
}
