import { ArgsType, Field, Float, ID, InputType, registerEnumType } from 'type-graphql';
import { ArrayMaxSize, IsOptional, ValidateNested } from 'class-validator';
import { Modality } from '../images/modality';
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
  description: 'What candidates are sorted by.',
  valuesConfig: { CREATED_AT: { description: 'When the candidate was created.' }, SCORE: { description: 'By the score of `orderBy.selectorModelId`; unscored candidates are left out.' } },
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

@InputType({ description: 'Which candidates a scoring run or a dataset draws from; every given condition must hold.' })
export class CandidateSelectionInput {
  @Field(() => [ID], { nullable: true, description: 'Candidates of these generation runs.' })
  @IsOptional()
  @ArrayMaxSize(100)
  generationRunIds?: string[] | null;

  @Field(() => [ID], { nullable: true })
  @IsOptional()
  @ArrayMaxSize(10000)
  candidateIds?: string[] | null;

  @Field(() => [CandidateStatus], { nullable: true, description: 'Default: OK only.' })
  @IsOptional()
  statuses?: CandidateStatus[] | null;

  @Field(() => [Modality], { nullable: true, description: 'Candidates whose image has any of these modalities.' })
  @IsOptional()
  modalities?: Modality[] | null;
}
