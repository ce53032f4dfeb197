import 'reflect-metadata';
import { DataSource } from 'typeorm';
import { postgresOptions } from './src/platform/db';
import { SnakeNamingStrategy } from './src/platform/naming';
import { Project } from './src/modules/projects/project.entity';
import { User } from './src/modules/projects/user.entity';
import { Membership } from './src/modules/projects/membership.entity';
import { ApiKey } from './src/modules/projects/api-key.entity';
import { Image } from './src/modules/images/image.entity';
import { Demonstration } from './src/modules/demonstrations/demonstration.entity';
import { Candidate } from './src/modules/candidates/candidate.entity';
import { Preference } from './src/modules/preferences/preference.entity';
import { SelectorModel } from './src/modules/selectors/selector-model.entity';
import { Score } from './src/modules/scoring/score.entity';
import { Dataset } from './src/modules/datasets/dataset.entity';
import { DatasetItem } from './src/modules/datasets/dataset-item.entity';
import { Run } from './src/modules/runs/run.entity';
import { RunFailure } from './src/modules/runs/run-failure.entity';
import { PromptTemplate } from './src/modules/llm-tasks/prompt-template.entity';
import { ImageEmbedding } from './src/modules/clustering/image-embedding.entity';
import { WebhookEndpoint } from './src/modules/webhooks/webhook-endpoint.entity';
import { WebhookAttempt, WebhookDelivery } from './src/modules/webhooks/webhook-delivery.entity';
import { AnnotationCampaign } from './src/modules/annotation/annotation-campaign.entity';
import { AnnotationItem } from './src/modules/annotation/annotation-item.entity';
import { AnnotationLease } from './src/modules/annotation/annotation-lease.entity';
import { AnnotationSkip } from './src/modules/annotation/annotation-skip.entity';
import { AnnotationSubmission } from './src/modules/annotation/annotation-submission.entity';
import { AnnotationPromotion } from './src/modules/annotation/annotation-promotion.entity';
import { EncoderModel } from './src/modules/encoders/encoder-model.entity';
import { EncoderEmbedding } from './src/modules/encoders/encoder-embedding.entity';
import { TrainingEpoch } from './src/modules/training/training-epoch.entity';
import { TrainingResult } from './src/modules/training/training-result.entity';
import { Initial1764150000000 } from './migrations/1764150000000-initial';
import { RateLimits1764150000001 } from './migrations/1764150000001-rate-limits';
import { Generation1764150000002 } from './migrations/1764150000002-generation';
import { Selection1764150000003 } from './migrations/1764150000003-selection';
import { RunCounters1764150000040 } from './migrations/1764150000040-run-counters';
import { MembershipDisplayName1764150000100 } from './migrations/1764150000100-membership-display-name';
import { Webhooks1764150000200 } from './migrations/1764150000200-webhooks';
import { ImageFetch1764150000300 } from './migrations/1764150000300-image-fetch';
import { EncodersTraining1764150000400 } from './migrations/1764150000400-encoders-training';
import { SelectorEvaluation, EvaluationItemScore } from './src/modules/evaluation/selector-evaluation.entity';
import { Evaluation1764150000500 } from './migrations/1764150000500-evaluation';
import { AnnotationCampaigns1764150000600 } from './migrations/1764150000600-annotation-campaigns';
import { AnnotationHandOutRank1764150000601 } from './migrations/1764150000601-annotation-hand-out-rank';

export const entities = [Project, User, Membership, ApiKey, Image, Demonstration, Candidate, Preference, SelectorModel, Score, Dataset, DatasetItem, Run, RunFailure, PromptTemplate, ImageEmbedding, WebhookEndpoint, WebhookDelivery, WebhookAttempt, AnnotationCampaign, AnnotationItem, AnnotationLease, AnnotationSkip, AnnotationSubmission, AnnotationPromotion, EncoderModel, EncoderEmbedding, TrainingEpoch, TrainingResult, SelectorEvaluation, EvaluationItemScore];
export const migrations = [Initial1764150000000, RateLimits1764150000001, Generation1764150000002, Selection1764150000003, RunCounters1764150000040, MembershipDisplayName1764150000100, Webhooks1764150000200, ImageFetch1764150000300, EncodersTraining1764150000400, Evaluation1764150000500, AnnotationCampaigns1764150000600, AnnotationHandOutRank1764150000601];

/** Options for any database URL: the app, the tests and the CLI all build their DataSource here. */
export function dataSourceOptions(url: string) {
  return { ...postgresOptions(url, { entities, migrations }), namingStrategy: new SnakeNamingStrategy() };
}

/** The one DataSource the TypeORM CLI uses (`-d ormconfig.ts`); it reads DATABASE_URL. */
export default new DataSource(dataSourceOptions(process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'));
