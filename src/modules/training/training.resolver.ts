import { Arg, Args, Authorized, Ctx, Field, FieldResolver, Float, ID, Int, Mutation, ObjectType, Resolver, Root } from 'type-graphql';
import { toGlobalId } from '../../platform/ids';
import { asPayload, UserError } from '../../platform/user-errors';
import type { GraphQLContext } from '../projects/graphql-context';
import { Role } from '../projects/role';
import { Run, RunKind } from '../runs/run.entity';
import type { RunsService } from '../runs/runs.service';
import { EncoderModel } from '../encoders/encoder-model.entity';
import type { EncodersService } from '../encoders/encoders.service';
import { SelectorModel } from '../selectors/selector-model.entity';
import { SelectorModelConnection } from '../selectors/selectors.resolver';
import { connectionOf, PageArgs } from '../../platform/pagination';
import type { SelectorsService } from '../selectors/selectors.service';
import { StartTrainingRunInput } from './training.inputs';
import { TrainingDataSummary, TrainingParams, TrainingService } from './training.service';

@ObjectType()
export class StartTrainingRunPayload {
  @Field(() => Run, { nullable: true }) run?: Run | null;
  @Field(() => [UserError]) userErrors: UserError[];
}

@ObjectType({ description: 'One completed epoch of a training run, for one clinician weight of its sweep.' })
export class TrainingEpochMetrics {
  @Field(() => Float) clinicianWeight: number;
  @Field(() => Int, { description: '1-based.' }) epoch: number;
  @Field(() => Float, { description: 'Weighted mean pairwise loss over the epoch (Σ w·ℓ / Σ w).' }) trainingLoss: number;
  @Field(() => Float, { description: 'Share of the training pairs ranked as preferred at their step (ties ½).' }) trainingAlignment: number;
  @Field(() => Float, { nullable: true, description: 'Alignment on the held-out clinician pairs after the epoch; null without validation pairs.' }) validationAlignment: number | null;
  @Field(() => Int) steps: number;
}

@ObjectType({ description: 'Pairs a training run used, by source; known once the worker has built them.' })
export class TrainingPairCounts {
  @Field(() => Int, { description: 'Model-rating pairs trained on (weight 1).' }) model: number;
  @Field(() => Int, { description: 'Clinician pairs trained on (weight w).' }) clinician: number;
  @Field(() => Int, { description: 'Held-out clinician pairs (validation).' }) validation: number;
  @Field(() => Int, { description: 'Model pairs left out because they involve a held-out image.' }) droppedModelPairs: number;
  @Field(() => Int, { description: 'Clinician pairs straddling a held-out and a training image: in neither set.' }) droppedClinicianPairs: number;
  @Field(() => Int, { description: 'Pairs left out because an item could not be embedded (an image without bytes).' }) withoutEmbeddings: number;
}

@ObjectType({ description: 'What a TRAINING run did: its parameters, epochs (the loss curve), pairs and the selector versions it registered.' })
export class TrainingRunDetails {
  run: Run;
  summary: Partial<TrainingDataSummary>;
  params: TrainingParams;

  @Field(() => [Float]) clinicianWeights: number[];
  @Field() selectorName: string;
  @Field(() => Int) seed: number;
  @Field(() => String, { nullable: true, description: 'SHA-256 over the encoder and the pairs trained and validated on; same data, same hash.' }) dataHash: string | null;
  @Field(() => TrainingPairCounts, { nullable: true }) pairCounts: TrainingPairCounts | null;
  @Field(() => [ID], { description: 'The images of the held-out clinician pairs: no training pair involves them.' }) validationImageIds: string[];
}

@Resolver(() => TrainingRunDetails)
export class TrainingRunDetailsResolver {
  constructor(
    private readonly trainingService: TrainingService,
    private readonly selectorsService: SelectorsService,
    private readonly encodersService: EncodersService,
  ) {}

  @FieldResolver(() => [TrainingEpochMetrics], { description: 'Epochs so far, by clinician weight then epoch.' })
  async epochs(@Root() details: TrainingRunDetails, @Ctx() { ctx }: GraphQLContext): Promise<TrainingEpochMetrics[]> {
    return this.trainingService.epochs(ctx, details.run.id);
  }

  @FieldResolver(() => SelectorModelConnection, { description: 'The selector versions the run registered (one per clinician weight, in sweep order), each with its clinicianWeight, training and metrics.' })
  async selectors(@Root() details: TrainingRunDetails, @Ctx() { ctx }: GraphQLContext, @Args() page: PageArgs): Promise<SelectorModelConnection> {
    return connectionOf(SelectorModelConnection, await this.selectorsService.listTrainedByRun(ctx, details.run.id, page));
  }

  @FieldResolver(() => EncoderModel, { nullable: true })
  async encoder(@Root() details: TrainingRunDetails, @Ctx() { ctx }: GraphQLContext): Promise<EncoderModel | null> {
    return this.encodersService.findById(ctx, details.params.encoderId);
  }
}

@Resolver(() => Run)
export class TrainingRunsResolver {
  constructor(private readonly trainingService: TrainingService) {}

  @Authorized(Role.CURATOR)
  @Mutation(() => StartTrainingRunPayload, {
    description:
      'Trains a selector head over a frozen encoder on model-rating and clinician preference pairs (issue 11), off the event loop; one selector version per clinician weight, registered but not activated. Follow it with runUpdated (training.epochs) or node(id:).',
  })
  async startTrainingRun(@Ctx() { ctx }: GraphQLContext, @Arg('input') input: StartTrainingRunInput): Promise<StartTrainingRunPayload> {
    return asPayload(async () => ({ run: await this.trainingService.startRun(ctx, input) }));
  }

  @FieldResolver(() => TrainingRunDetails, { nullable: true, description: 'For TRAINING runs: parameters, epochs, pair counts, held-out images and the selector versions registered; null for other kinds.' })
  training(@Root() run: Run): TrainingRunDetails | null {
    if (run.kind !== RunKind.TRAINING) return null;
    const params = run.params as unknown as TrainingParams & Partial<TrainingDataSummary>;
    return Object.assign(new TrainingRunDetails(), {
      run,
      params,
      summary: params,
      clinicianWeights: params.clinicianWeights,
      selectorName: params.selectorName,
      seed: params.seed,
      dataHash: params.dataHash ?? null,
      pairCounts: params.pairCounts ?? null,
      validationImageIds: (params.validationImageIds ?? []).map((id) => toGlobalId('Image', id)),
    });
  }
}

@Resolver(() => SelectorModel)
export class TrainedSelectorResolver {
  constructor(private readonly runsService: RunsService) {}

  @FieldResolver(() => Run, { nullable: true, description: 'The TRAINING run that produced this version; null for uploaded selectors.' })
  async trainingRun(@Root() selector: SelectorModel, @Ctx() { ctx }: GraphQLContext): Promise<Run | null> {
    return selector.trainingRunId ? this.runsService.findById(ctx, selector.trainingRunId) : null;
  }
}
