import { Field, Float, Int, ObjectType, registerEnumType } from 'type-graphql';
import { Column, Entity, Index, JoinColumn, ManyToOne } from 'typeorm';
import { Node, ProjectScopedEntity } from '../../platform/entity-base';
import { SelectorModel } from '../selectors/selector-model.entity';

/** What an evaluation row measures: a selector's scores, or a model judge's ratings. */
export enum EvaluationSubject {
  SELECTOR = 'SELECTOR',
  JUDGE = 'JUDGE',
}
registerEnumType(EvaluationSubject, {
  name: 'EvaluationSubject',
  description: 'What an evaluation measured on the held-out clinician pairs.',
  valuesConfig: {
    SELECTOR: { description: 'A selector model, scoring each judged answer with the full model on (image, text).' },
    JUDGE: { description: "The model judge's 0-10 ratings of the same answers (startRatingRun)." },
  },
});

/** A statistic with its seeded bootstrap percentile interval (resampling whole images). */
@ObjectType({ description: 'A statistic on the held-out clinician pairs with its bootstrap interval; null when undefined on these pairs.' })
export class MetricEstimate {
  @Field(() => Float, { nullable: true })
  value: number | null;

  @Field(() => Float, { nullable: true, description: 'Lower end of the bootstrap interval (level given by `level`).' })
  low: number | null;

  @Field(() => Float, { nullable: true })
  high: number | null;

  @Field(() => Float, { description: 'Interval level, 0.95.' })
  level: number;
}

/**
 * How aligned one selector (or the model judge) is with clinicians on the held-out clinician pairs
 * of one EVALUATION run; exactly one row per (run, subject). The statistics are columns so that a
 * comparison can sort and filter them; `report` keeps the whole report (counts, ties, intervals).
 */
@ObjectType({ implements: Node, description: 'One selector or the model judge, measured against held-out clinician pairs by an EVALUATION run.' })
@Entity({ name: 'selector_evaluations' })
@Index(['runId', 'subjectKey'], { unique: true })
@Index(['projectId', 'selectorModelId', 'createdAt', 'id'])
export class SelectorEvaluation extends ProjectScopedEntity {
  @Column('uuid')
  runId: string;

  @Field(() => EvaluationSubject)
  @Column('text')
  subject: EvaluationSubject;

  /** `selector:<id>` or `judge:<model>`: what makes a row unique within its run. */
  @Column('text')
  subjectKey: string;

  @Column('uuid', { nullable: true })
  selectorModelId: string | null;

  @Field(() => String, { nullable: true, description: 'The judge model whose ratings were measured (JUDGE rows).' })
  @Column('text', { nullable: true })
  judgeModel: string | null;

  @Field(() => Int, { description: 'Held-out clinician pairs measured (both answers scored).' })
  @Column('int')
  pairs: number;

  @Field(() => Int, { description: 'Held-out pairs left out because an answer has no score (judge: unrated answer; selector: image without bytes).' })
  @Column('int')
  pairsWithoutScore: number;

  @Field(() => Int, { description: 'Pairs whose two answers got the same score (counted 1/2 in the alignment rate).' })
  @Column('int')
  ties: number;

  @Field(() => Int, { description: 'Images the bootstrap resampled.' })
  @Column('int')
  bootstrapUnits: number;

  @Column('double precision', { nullable: true })
  alignmentRateValue: number | null;

  @Column('double precision', { nullable: true })
  aucValue: number | null;

  @Column('double precision', { nullable: true })
  meanRankValue: number | null;

  @Column('double precision', { nullable: true })
  mapValue: number | null;

  /** evaluateSelectorAlignment's report as computed (see alignment-metrics.ts), plus the bootstrap settings. */
  @Column('jsonb')
  report: Record<string, any>;

  @ManyToOne(() => SelectorModel, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'selector_model_id' })
  selectorModel?: SelectorModel;

  private estimate(name: string, value: number | null): MetricEstimate {
    const interval = this.report?.[name]?.interval ?? {};
    return { value, low: interval.low ?? null, high: interval.high ?? null, level: interval.level ?? 0.95 };
  }

  @Field(() => MetricEstimate, { description: 'Share of held-out clinician pairs ranked as the clinician did (a tie counts 1/2).' })
  get alignmentRate(): MetricEstimate {
    return this.estimate('alignmentRate', this.alignmentRateValue);
  }

  @Field(() => MetricEstimate, { description: 'ROC AUC of the scores for preferred (positive) vs rejected (negative) answers, scikit-learn style.' })
  get auc(): MetricEstimate {
    return this.estimate('auc', this.aucValue);
  }

  @Field(() => MetricEstimate, { description: "Mean rank (1 = best) of clinician-preferred answers among their question's answers." })
  get meanRank(): MetricEstimate {
    return this.estimate('meanRank', this.meanRankValue);
  }

  @Field(() => MetricEstimate, { description: 'Mean over questions of the average precision of the clinician-preferred answers.' })
  get meanAveragePrecision(): MetricEstimate {
    return this.estimate('meanAveragePrecision', this.mapValue);
  }

  @Field(() => Int, { description: 'Bootstrap resamples drawn.' })
  get bootstrapSamples(): number {
    return this.report?.bootstrap?.resamples ?? 0;
  }

  @Field(() => Int, { description: 'Bootstrap seed.' })
  get seed(): number {
    return this.report?.bootstrap?.seed ?? 0;
  }
}

/**
 * A selector's score of one judged item (image + the item's selector text), cached across
 * evaluation runs: a selector version is immutable, so the same (selector, image, text) always
 * scores the same, and re-evaluating on a grown set only runs the model on new items.
 */
@Entity({ name: 'evaluation_item_scores' })
@Index(['projectId', 'selectorModelId', 'imageId', 'textHash'], { unique: true })
export class EvaluationItemScore extends ProjectScopedEntity {
  @Column('uuid')
  selectorModelId: string;

  @Column('uuid')
  imageId: string;

  @Column('char', { length: 64 })
  textHash: string;

  @Column('double precision')
  value: number;

  @ManyToOne(() => SelectorModel, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'selector_model_id' })
  selectorModel?: SelectorModel;
}
