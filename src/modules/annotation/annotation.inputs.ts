import { ArgsType, Field, Float, ID, InputType, Int } from 'type-graphql';
import { ArrayMaxSize, IsOptional, IsString, Max, MaxLength, Min, ValidateNested } from 'class-validator';
import { PageArgs } from '../../platform/pagination';
import { CandidateFilter } from '../candidates/candidates.inputs';
import { PairwiseChoice } from '../preferences/preference.entity';
import { AnnotationRouting, AnnotationTaskKind } from './annotation-campaign.entity';
import { AnnotationItemStatus } from './annotation-item.entity';

export const MAX_CAMPAIGN_ITEMS = 10_000;
export const MAX_OVERLAP = 20;

@InputType({ description: 'The items of a campaign: give exactly one source. Only OK candidates are taken; the set is frozen at creation.' })
export class AnnotationItemsInput {
  @Field(() => CandidateFilter, { nullable: true, description: 'The candidates a filter picks now, oldest first.' })
  @IsOptional()
  @ValidateNested()
  candidateFilter?: CandidateFilter | null;

  @Field(() => ID, { nullable: true, description: 'The OK candidates of a generation run, by image and sample.' })
  @IsOptional()
  generationRunId?: string | null;

  @Field(() => ID, { nullable: true, description: 'The candidates of a dataset, in rank order.' })
  @IsOptional()
  datasetId?: string | null;
}

@InputType()
export class CreateAnnotationCampaignInput {
  @Field() @IsString() @MaxLength(200) name: string;
  @Field(() => String, { nullable: true, description: 'Markdown shown to clinicians.' }) @IsOptional() @IsString() @MaxLength(50_000) guidelines?: string | null;
  @Field(() => AnnotationTaskKind) taskKind: AnnotationTaskKind;
  @Field(() => AnnotationItemsInput) @ValidateNested() items: AnnotationItemsInput;

  @Field(() => Int, { defaultValue: 1, description: `Different clinicians who must submit each item (1 to ${MAX_OVERLAP}).` })
  @Min(1)
  @Max(MAX_OVERLAP)
  overlap: number;

  @Field(() => [ID], { nullable: true, description: 'User ids of the members who may annotate (CLINICIAN or higher); null: every CLINICIAN member.' })
  @IsOptional()
  @ArrayMaxSize(500)
  annotatorIds?: string[] | null;

  @Field(() => Int, { defaultValue: 900, description: 'How long a task stays reserved for the clinician it was handed to (30 s to 1 day).' })
  @Min(30)
  @Max(86_400)
  leaseSeconds: number;

  @Field({ defaultValue: true, description: 'Clinicians never see the submissions of others.' }) blind: boolean;
  @Field(() => AnnotationRouting, { defaultValue: AnnotationRouting.RANDOM }) routing: AnnotationRouting;
}

@InputType()
export class AnswerAcceptanceInput {
  @Field(() => Int) @Min(0) @Max(99) roundIndex: number;
  @Field(() => Int, { description: '0 for answer A, 1 for answer B.' }) @Min(0) @Max(1) answerIndex: number;
  @Field() accepted: boolean;
}

@InputType()
export class AnswerRatingInput {
  @Field(() => Int) @Min(0) @Max(99) roundIndex: number;
  @Field(() => Int, { description: '0 for answer A, 1 for answer B.' }) @Min(0) @Max(1) answerIndex: number;
  @Field(() => Float, { description: '0 to 10.' }) @Min(0) @Max(10) rating: number;
}

@InputType()
export class PairwiseAnnotationInput {
  @Field(() => Int, { nullable: true, description: "The round judged; optional, and when given it must be the item's round." })
  @IsOptional()
  @Min(0)
  @Max(99)
  roundIndex?: number | null;

  @Field(() => PairwiseChoice) choice: PairwiseChoice;
}

@InputType({ description: "A clinician's judgement of a leased item (or a new version of their own earlier one); give the field of the campaign's task kind." })
export class SubmitAnnotationInput {
  @Field(() => ID) itemId: string;
  @Field(() => String, { nullable: true }) @IsOptional() @IsString() @MaxLength(10_000) comment?: string | null;

  @Field(() => [AnswerAcceptanceInput], { nullable: true, description: 'ACCEPTANCE: every answer of every round, once.' })
  @IsOptional()
  @ValidateNested()
  @ArrayMaxSize(200)
  acceptance?: AnswerAcceptanceInput[] | null;

  @Field(() => PairwiseAnnotationInput, { nullable: true, description: 'PAIRWISE.' })
  @IsOptional()
  @ValidateNested()
  pairwise?: PairwiseAnnotationInput | null;

  @Field(() => [AnswerRatingInput], { nullable: true, description: 'RATING: every answer of every round, once.' })
  @IsOptional()
  @ValidateNested()
  @ArrayMaxSize(200)
  ratings?: AnswerRatingInput[] | null;
}

@InputType()
export class NextAnnotationTaskInput {
  @Field(() => ID) campaignId: string;
}

@InputType()
export class SkipAnnotationTaskInput {
  @Field(() => ID, { description: 'An item leased to you.' }) itemId: string;
}

@InputType()
export class PromoteToDemonstrationInput {
  @Field(() => ID, { description: 'A campaign item with submissions.' }) itemId: string;
}

@ArgsType()
export class AnnotationSubmissionsArgs extends PageArgs {
  @Field({ defaultValue: false, description: "Only each clinician's latest version." }) latestOnly: boolean;
}

@ArgsType()
export class AnnotationItemsArgs extends PageArgs {
  @Field(() => AnnotationItemStatus, { nullable: true }) @IsOptional() status?: AnnotationItemStatus | null;
}
