import { Field, Float, Int, ObjectType, registerEnumType } from 'type-graphql';
import { Column, Entity, Index } from 'typeorm';
import { GraphQLDateTime, GraphQLJSONObject } from 'graphql-scalars';
import { Node, ProjectScopedEntity } from '../../platform/entity-base';

export enum RunKind {
  GENERATION = 'GENERATION',
  RATING = 'RATING',
  CLUSTERING = 'CLUSTERING',
  SCORING = 'SCORING',
  TRAINING = 'TRAINING',
  EXPORT = 'EXPORT',
  IMAGE_FETCH = 'IMAGE_FETCH',
  EVALUATION = 'EVALUATION',
}
registerEnumType(RunKind, {
  name: 'RunKind',
  description: 'What a run does; each kind is started by its own mutation.',
  valuesConfig: {
    GENERATION: { description: 'The model writes candidate conversations (startGenerationRun).' },
    RATING: { description: 'The judge rates every answer 0-10 (startRatingRun).' },
    CLUSTERING: { description: 'k-means diversity clusters of the images (startClusteringRun).' },
    SCORING: { description: 'A selector model scores candidates (startScoringRun).' },
    TRAINING: { description: 'Trains a selector head over a frozen encoder on preference pairs; one selector version per clinician weight (startTrainingRun).' },
    EXPORT: { description: 'Reserved: exports stream on request and need no run.' },
    IMAGE_FETCH: { description: 'Fetches the bytes of images imported by URL (importRecords returns it as fetchRun); each failure names its image.' },
    EVALUATION: { description: 'Measures selectors and the model judge against held-out clinician pairs (startEvaluationRun); one item per selector or judge.' },
  },
});

export enum RunStatus {
  QUEUED = 'QUEUED',
  RUNNING = 'RUNNING',
  SUCCEEDED = 'SUCCEEDED',
  FAILED = 'FAILED',
  CANCELLED = 'CANCELLED',
}
registerEnumType(RunStatus, {
  name: 'RunStatus',
  description: 'Where a run is; SUCCEEDED, FAILED and CANCELLED are final.',
  valuesConfig: {
    QUEUED: { description: 'Created; waiting for a worker.' },
    RUNNING: { description: 'A worker is processing its items.' },
    SUCCEEDED: { description: 'Ended; every item was processed (some may have failed, see `failed` and `failures`).' },
    FAILED: { description: 'Ended without results: every item failed, or the run could not proceed (see `lastError`).' },
    CANCELLED: { description: 'Stopped by cancelRun; what it finished is kept.' },
  },
});

/** How many of a run's items ended with one outcome. */
@ObjectType()
export class RunStatusCount {
  @Field(() => String, {
    description:
      'The outcome: generation OK, PARSE_FAILED, REFUSED, FAILED (the candidate status); rating RATED, UNPARSEABLE, REFUSED, FAILED; scoring SCORED, FAILED, SKIPPED; clustering EMBEDDED; image fetch FETCHED or the failure\'s error code (INVALID, TOO_LARGE, UNSUPPORTED_MEDIA, DUPLICATE).',
  })
  status: string;

  @Field(() => Int)
  count: number;
}

/** Long work (DESIGN.md §4): created by a mutation, done by workers, followed by polling or subscription. */
@ObjectType({ implements: Node })
@Entity({ name: 'runs' })
@Index(['projectId', 'createdAt', 'id'])
@Index(['projectId', 'kind', 'status'])
export class Run extends ProjectScopedEntity {
  @Field(() => RunKind)
  @Column({ type: 'enum', enum: RunKind, enumName: 'run_kind' })
  kind: RunKind;

  @Field(() => RunStatus)
  @Column({ type: 'enum', enum: RunStatus, enumName: 'run_status', default: RunStatus.QUEUED })
  status: RunStatus;

  @Field(() => GraphQLJSONObject)
  @Column('jsonb', { default: () => "'{}'" })
  params: Record<string, unknown>;

  @Field(() => Int, { description: 'Items the run was asked for, frozen when it was created (generation: images × samples; rating: answers; scoring: candidates; clustering: images). Once the run ends, done + failed + skipped = total.' })
  @Column('int', { default: 0 })
  total: number;

  @Field(() => Int, {
    description:
      'Items that reached their intended result: generation OK candidates, rating parsed ratings, scoring finite scores, clustering images with a text embedding. Always the sum of the done statuses in countsByStatus.',
  })
  @Column('int', { default: 0 })
  done: number;

  @Field(() => Int, {
    description:
      'Items that ended without their intended result, each with a stored reason: generation PARSE_FAILED, REFUSED and FAILED candidates (a SUCCEEDED run can have some), rating UNPARSEABLE, REFUSED and FAILED answers, scoring candidates that could not be scored. See countsByStatus for the split.',
  })
  @Column('int', { default: 0 })
  failed: number;

  @Field(() => Int, { description: 'Items this run left alone because another run had already finished them (scoring: the candidate already has a score from the same selector). Not counted in done or failed.' })
  @Column('int', { default: 0 })
  skipped: number;

  /** Items by outcome (a candidate status, a rating outcome, SCORED, SKIPPED...): exposed as `countsByStatus`. */
  @Column('jsonb', { default: () => "'{}'" })
  countsByStatus: Record<string, number>;

  @Field(() => Int, {
    description:
      'Model calls made again because the worker that made them stopped (crash, kill, shutdown, cancel) before their result was stored: the provider may bill them, but no item records them. Counted when another worker takes the run over, or when the run ends.',
  })
  @Column('int', { default: 0 })
  abandonedAttempts: number;

  @Field(() => Float, { description: 'Estimated cost in US dollars of the abandoned attempts, from their requests\' estimated prompt tokens (their replies were never read). Not included in costUsd.' })
  @Column('numeric', { precision: 12, scale: 6, default: 0, transformer: { to: (v: number) => v, from: (v: string) => Number(v) } })
  abandonedCostUsd: number;

  /** Model calls started and not yet settled by a stored item: what becomes abandoned if their worker stops. */
  @Column('int', { default: 0 })
  inFlightCalls: number;

  @Column('numeric', { precision: 12, scale: 6, default: 0, transformer: { to: (v: number) => v, from: (v: string) => Number(v) } })
  inFlightCostUsd: number;

  @Field(() => Float)
  @Column('bigint', { default: 0, transformer: { to: (v: number) => v, from: (v: string) => Number(v) } })
  promptTokens: number;

  @Field(() => Float)
  @Column('bigint', { default: 0, transformer: { to: (v: number) => v, from: (v: string) => Number(v) } })
  completionTokens: number;

  @Field(() => Float, { description: 'Estimated cost in US dollars of the calls whose results were stored (see abandonedCostUsd for the others).' })
  @Column('numeric', { precision: 12, scale: 6, default: 0, transformer: { to: (v: number) => v, from: (v: string) => Number(v) } })
  costUsd: number;

  @Field(() => String, { nullable: true })
  @Column('text', { nullable: true })
  lastError: string | null;

  @Column('uuid', { nullable: true })
  createdById: string | null;

  @Field(() => GraphQLJSONObject, { nullable: true, description: 'Where the run spent its time, by stage (milliseconds), for runs that report it (scoring).' })
  @Column('jsonb', { nullable: true })
  metrics: Record<string, unknown> | null;

  @Field(() => GraphQLDateTime, { nullable: true })
  @Column({ type: 'timestamptz', nullable: true, precision: 3 })
  startedAt: Date | null;

  @Field(() => GraphQLDateTime, { nullable: true })
  @Column({ type: 'timestamptz', nullable: true, precision: 3 })
  finishedAt: Date | null;

  @Field(() => GraphQLDateTime, { nullable: true })
  @Column({ type: 'timestamptz', nullable: true, precision: 3 })
  cancelRequestedAt: Date | null;
}
