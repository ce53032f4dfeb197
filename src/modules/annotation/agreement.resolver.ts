import DataLoader from 'dataloader';
import { Arg, Ctx, Field, FieldResolver, Float, ID, Int, ObjectType, Query, Resolver, Root } from 'type-graphql';
import type { GraphQLContext } from '../projects/graphql-context';
import type { RequestContext } from '../projects/request-context';
import type { ProjectsService } from '../projects/projects.service';
import { User } from '../projects/user.entity';
import { userByIdLoader } from '../projects/projects.loaders';
import { SelectorModel } from '../selectors/selector-model.entity';
import type { SelectorsService } from '../selectors/selectors.service';
import { selectorModelByIdLoader } from '../selectors/selectors.loaders';
import { mayReadAgreement } from './agreement.service';
import type { AnnotationAgreementService, CampaignAgreementView } from './agreement.service';
import { AnnotationCampaign } from './annotation-campaign.entity';
import type { AnnotatorAgreement as AnnotatorAgreementShape, PairAgreement } from './campaign-agreement';

@ObjectType({ description: 'An agreement coefficient with the number of items behind it.' })
export class AgreementFigure {
  @Field(() => Float, { nullable: true, description: 'Null when undefined: too few items, or no variation to agree on.' }) value: number | null;
  @Field(() => Int, { description: 'Items (units) the figure is computed on.' }) items: number;
}

@ObjectType({ description: "Fleiss' kappa over the items with the most common number of clinicians (normally the overlap)." })
export class FleissKappaFigure extends AgreementFigure {
  @Field(() => Int, { description: 'Clinicians per item in the figure.' }) raters: number;
}

@ObjectType({ description: "Krippendorff's alpha at three levels of measurement; missing judgements allowed." })
export class KrippendorffAlphaFigures {
  @Field(() => AgreementFigure) nominal: AgreementFigure;
  @Field(() => AgreementFigure, { description: 'ACCEPTANCE: rejected < accepted; PAIRWISE: B < TIE < A; RATING: the ratings.' }) ordinal: AgreementFigure;
  @Field(() => AgreementFigure) interval: AgreementFigure;
}

@ObjectType({ description: "Cohen's kappa of two clinicians on the items both judged." })
export class AnnotatorPairAgreement {
  annotatorAId: string;
  annotatorBId: string;
  @Field(() => Int) items: number;
  @Field(() => Float, { nullable: true, description: 'Unweighted.' }) kappa: number | null;
  @Field(() => Float, { nullable: true, description: 'Linear weights over the 0-10 scale; RATING campaigns only.' }) kappaLinear: number | null;
  @Field(() => Float, { nullable: true, description: 'Quadratic weights over the 0-10 scale; RATING campaigns only.' }) kappaQuadratic: number | null;
}

@ObjectType({ description: "One clinician's agreement with the others." })
export class AnnotatorAgreement {
  annotatorId: string;
  @Field(() => Int, { description: 'Items they judged.' }) items: number;
  @Field(() => Float, { nullable: true, description: "Mean of their Cohen's kappas with each other clinician (quadratic-weighted for RATING)." }) meanKappaVsOthers: number | null;
  @Field(() => Int, { description: 'Other clinicians in that mean.' }) others: number;
  @Field(() => Float, { nullable: true, description: "Cohen's kappa against the others' majority on each item (their rounded median for RATING, quadratic-weighted); items where the others tie are left out." })
  kappaVsMajority: number | null;
  @Field(() => Int) majorityItems: number;
}

@ObjectType({ description: 'How often a model orders the judged answers as the clinicians did: one pair per clinician per ordering they expressed (accepted > rejected, higher > lower rating, the chosen side).' })
export class ModelAlignmentFigure {
  selectorModelId: string | null;
  @Field(() => String, { nullable: true, description: 'The judge compared (the one that rated these candidates last).' }) judgeModel: string | null;
  @Field(() => Float, { nullable: true, description: 'Share of scored pairs ordered as the clinician did (a tie counts ½).' }) alignmentRate: number | null;
  @Field(() => Float, { nullable: true, description: '95 % bootstrap interval (whole candidates resampled, seed 0).' }) intervalLow: number | null;
  @Field(() => Float, { nullable: true }) intervalHigh: number | null;
  @Field(() => Int, { description: 'Clinician pairs in the campaign.' }) clinicianPairs: number;
  @Field(() => Int, { description: 'Pairs the model scored on both sides: the pairs behind the rate.' }) scoredPairs: number;
  @Field(() => Int) ties: number;
  @Field(() => Int, { description: 'Answers the selector could not score (no image bytes, or beyond 2,000 answers per request).' }) unscoredItems: number;
}

@ObjectType({ description: 'An alignment rate on given clinician pairs.' })
export class AlignmentRateFigure {
  @Field(() => Float, { nullable: true, description: 'Share of the pairs ordered as the clinician did (a tie counts ½); null without pairs.' }) alignmentRate: number | null;
  @Field(() => Float, { nullable: true, description: '95 % bootstrap interval (whole candidates resampled, seed 0).' }) intervalLow: number | null;
  @Field(() => Float, { nullable: true }) intervalHigh: number | null;
  @Field(() => Int) ties: number;
}

@ObjectType({ description: 'The model judge and a selector on exactly the same clinician pairs (those both scored), so their rates compare like for like.' })
export class JudgeAndSelectorComparison {
  selectorModelId: string;
  @Field(() => String, { nullable: true }) judgeModel: string | null;
  @Field(() => Int, { description: 'Clinician pairs in the campaign.' }) clinicianPairs: number;
  @Field(() => Int, { description: 'Pairs both scored on both sides: the pairs behind both rates.' }) pairs: number;
  @Field(() => AlignmentRateFigure) judge: AlignmentRateFigure;
  @Field(() => AlignmentRateFigure) selector: AlignmentRateFigure;
}

@ObjectType({ description: "Agreement of a campaign's clinicians with each other, and with the model judge and a selector, from their latest judgements." })
export class AnnotationAgreement {
  view: CampaignAgreementView;
  @Field(() => Int, { description: 'Items (answers, or comparisons for PAIRWISE) judged by anyone.' }) items: number;
  @Field(() => Int, { description: 'Items judged by two clinicians or more.' }) sharedItems: number;
  @Field(() => Int) annotatorCount: number;
  @Field(() => FleissKappaFigure) fleissKappa: FleissKappaFigure;
  @Field(() => KrippendorffAlphaFigures) krippendorffAlpha: KrippendorffAlphaFigures;
  @Field(() => [AnnotatorPairAgreement], { description: 'Every pair of clinicians who judged the campaign.' }) pairs: AnnotatorPairAgreement[];
  @Field(() => [AnnotatorAgreement]) annotators: AnnotatorAgreement[];
}

/** The GraphQL shape of a computed agreement. */
export function toAnnotationAgreement(view: CampaignAgreementView): AnnotationAgreement {
  const figure = (r: { value: number | null; nUnits: number }): AgreementFigure => ({ value: r.value, items: r.nUnits });
  return {
    view,
    items: view.nUnits,
    sharedItems: view.nUnitsShared,
    annotatorCount: view.nAnnotators,
    fleissKappa: { value: view.fleiss.value, items: view.fleiss.nSubjects, raters: view.fleiss.nRaters },
    krippendorffAlpha: { nominal: figure(view.alphaNominal), ordinal: figure(view.alphaOrdinal), interval: figure(view.alphaInterval) },
    pairs: view.pairs.map((p: PairAgreement) => ({ annotatorAId: p.annotatorA, annotatorBId: p.annotatorB, items: p.nItems, kappa: p.kappa, kappaLinear: p.kappaLinear, kappaQuadratic: p.kappaQuadratic })),
    annotators: view.annotators.map((a: AnnotatorAgreementShape) => ({
      annotatorId: a.annotatorId,
      items: a.nItems,
      meanKappaVsOthers: a.meanKappaVsOthers,
      others: a.nOthers,
      kappaVsMajority: a.kappaVsMajority,
      majorityItems: a.nItemsVsMajority,
    })),
  };
}

/** Agreements of the caller's campaigns, batched per request: a page of campaigns is one SQL statement. */
export function campaignAgreementLoader(ctx: RequestContext, agreements: AnnotationAgreementService): DataLoader<string, AnnotationAgreement> {
  return ctx.loader('annotation.agreement', () => new DataLoader(async (ids: readonly string[]) => (await agreements.forCampaigns(ctx, ids)).map(toAnnotationAgreement)));
}

/**
 * Who reads agreement: every member, VIEWER up, except a CLINICIAN in a blind campaign (see
 * mayReadAgreement): FORBIDDEN here, null on AnnotationCampaign.agreement.
 */
@Resolver(() => AnnotationAgreement)
export class AnnotationAgreementResolver {
  constructor(private readonly agreements: AnnotationAgreementService) {}

  @Query(() => AnnotationAgreement, { description: "A campaign's agreement statistics (also AnnotationCampaign.agreement); FORBIDDEN for a CLINICIAN when the campaign is blind." })
  async annotationAgreement(@Ctx() { ctx }: GraphQLContext, @Arg('campaignId', () => ID) campaignId: string): Promise<AnnotationAgreement> {
    return toAnnotationAgreement(await this.agreements.forCampaign(ctx, campaignId));
  }

  @FieldResolver(() => ModelAlignmentFigure, { description: "The model judge's ratings against the clinicians' orderings of the same answers." })
  async judge(@Root() agreement: AnnotationAgreement, @Ctx() { ctx }: GraphQLContext): Promise<ModelAlignmentFigure> {
    return this.agreements.judgeAlignment(ctx, agreement.view);
  }

  @FieldResolver(() => ModelAlignmentFigure, {
    nullable: true,
    description:
      'A selector (the active one unless named) against the clinicians: each judged answer scored by the full selector on its image and that answer’s text (as training and evaluation do), whole candidates by their stored score. Null without an active selector.',
  })
  async selector(@Root() agreement: AnnotationAgreement, @Ctx() { ctx }: GraphQLContext, @Arg('selectorModelId', () => ID, { nullable: true }) selectorModelId?: string | null): Promise<ModelAlignmentFigure | null> {
    return this.agreements.selectorAlignment(ctx, agreement.view, selectorModelId);
  }

  @FieldResolver(() => JudgeAndSelectorComparison, { nullable: true, description: 'The judge and a selector (the active one unless named) on the same pairs. Null without a selector.' })
  async judgeAndSelector(@Root() agreement: AnnotationAgreement, @Ctx() { ctx }: GraphQLContext, @Arg('selectorModelId', () => ID, { nullable: true }) selectorModelId?: string | null): Promise<JudgeAndSelectorComparison | null> {
    return this.agreements.judgeAndSelector(ctx, agreement.view, selectorModelId);
  }
}

@Resolver(() => JudgeAndSelectorComparison)
export class JudgeAndSelectorComparisonResolver {
  constructor(private readonly selectors: SelectorsService) {}

  @FieldResolver(() => SelectorModel, { nullable: true })
  selectorModel(@Root() comparison: JudgeAndSelectorComparison, @Ctx() { ctx }: GraphQLContext): Promise<SelectorModel | null> {
    return selectorModelByIdLoader(ctx, this.selectors).load(comparison.selectorModelId);
  }
}

@Resolver(() => ModelAlignmentFigure)
export class ModelAlignmentFigureResolver {
  constructor(private readonly selectors: SelectorsService) {}

  @FieldResolver(() => SelectorModel, { nullable: true })
  selectorModel(@Root() figure: ModelAlignmentFigure, @Ctx() { ctx }: GraphQLContext): Promise<SelectorModel | null> | null {
    return figure.selectorModelId ? selectorModelByIdLoader(ctx, this.selectors).load(figure.selectorModelId) : null;
  }
}

@Resolver(() => AnnotatorPairAgreement)
export class AnnotatorPairAgreementResolver {
  constructor(private readonly projects: ProjectsService) {}

  @FieldResolver(() => User, { nullable: true, description: 'Null for a former member.' })
  annotatorA(@Root() pair: AnnotatorPairAgreement, @Ctx() { ctx }: GraphQLContext): Promise<User | null> {
    return userByIdLoader(ctx, this.projects).load(pair.annotatorAId);
  }

  @FieldResolver(() => User, { nullable: true, description: 'Null for a former member.' })
  annotatorB(@Root() pair: AnnotatorPairAgreement, @Ctx() { ctx }: GraphQLContext): Promise<User | null> {
    return userByIdLoader(ctx, this.projects).load(pair.annotatorBId);
  }
}

@Resolver(() => AnnotatorAgreement)
export class AnnotatorAgreementResolver {
  constructor(private readonly projects: ProjectsService) {}

  @FieldResolver(() => User, { nullable: true, description: 'Null for a former member.' })
  annotator(@Root() row: AnnotatorAgreement, @Ctx() { ctx }: GraphQLContext): Promise<User | null> {
    return userByIdLoader(ctx, this.projects).load(row.annotatorId);
  }
}

@Resolver(() => AnnotationCampaign)
export class AnnotationCampaignAgreementResolver {
  constructor(private readonly agreements: AnnotationAgreementService) {}

  @FieldResolver(() => AnnotationAgreement, {
    nullable: true,
    description: "Agreement of the campaign's clinicians with each other and with the judge and a selector (batched: a page of campaigns reads its judgements in one statement). Null for a CLINICIAN when the campaign is blind.",
  })
  agreement(@Root() campaign: AnnotationCampaign, @Ctx() { ctx }: GraphQLContext): Promise<AnnotationAgreement> | null {
    if (!mayReadAgreement(ctx, campaign)) return null;
    return campaignAgreementLoader(ctx, this.agreements).load(campaign.id);
  }
}
