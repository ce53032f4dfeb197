import { Arg, Args, Authorized, Ctx, Field, FieldResolver, Mutation, ObjectType, Query, Resolver, Root, registerEnumType } from 'type-graphql';
import { GraphQLDateTime } from 'graphql-scalars';
import { signedDatasetExportPath } from './dataset-exports.routes';
import { asPayload, UserError } from '../../platform/user-errors';
import { Role } from '../projects/role';
import { SelectorModel } from '../selectors/selector-model.entity';
import { selectorModelByIdLoader } from '../selectors/selectors.loaders';
import { CreateDatasetInput } from './datasets.inputs';
import type { UrlSigner } from '../../platform/signing';
import type { CandidatesService } from '../candidates/candidates.service';
import type { DatasetsService } from './datasets.service';
import type { SelectorsService } from '../selectors/selectors.service';
import { ConnectionType, connectionOf, PageArgs } from '../../platform/pagination';
import type { GraphQLContext } from '../projects/graphql-context';
import { Candidate } from '../candidates/candidate.entity';
import { candidateByIdLoader } from '../candidates/candidates.loaders';
import { Dataset } from './dataset.entity';
import { DatasetItem } from './dataset-item.entity';

@ObjectType()
export class DatasetConnection extends ConnectionType(Dataset, 'Dataset') {}

@ObjectType()
export class DatasetItemConnection extends ConnectionType(DatasetItem, 'DatasetItem') {}

export enum DatasetExportFormat {
  LLAVA_JSON = 'llava.json',
  JSONL = 'jsonl',
  TRL_JSONL = 'trl.jsonl',
  TRL_VISION_JSONL = 'trl-vision.jsonl',
  IMAGES_TAR = 'images.tar',
  CARD_MD = 'card.md',
  CARD_JSON = 'card.json',
}
registerEnumType(DatasetExportFormat, {
  name: 'DatasetExportFormat',
  description: 'A download format of a dataset; the URL path uses its file suffix (llava.json, jsonl, trl.jsonl, images.tar).',
  valuesConfig: {
    LLAVA_JSON: { description: 'One JSON array of {id, image, conversations}, as BioMed-VITAL releases its data.' },
    JSONL: { description: 'One JSON object per line: the LLaVA sample with rank, score, ids, figure and provenance.' },
    TRL_JSONL: { description: 'TRL preference pairs {prompt, chosen, rejected} (conversational), one per line, from the preferences.' },
    TRL_VISION_JSONL: { description: "The same pairs in TRL's vision format: an `images` column and content as typed parts ({type: image} / {type: text, text})." },
    IMAGES_TAR: { description: 'The images the exports reference, at the paths their `image` fields give, with the dataset card (card.md, card.json).' },
    CARD_MD: { description: 'The dataset card, markdown: composition, selection rule and selector, generation and rating provenance, content hash.' },
    CARD_JSON: { description: 'The dataset card as JSON, the same data as card.md.' },
  },
});

@ObjectType({ description: 'A download of the dataset, streamed, any size: the url is signed and works without a header until expiresAt (then 410; ask again).' })
export class DatasetExport {
  @Field(() => DatasetExportFormat) format: DatasetExportFormat;
  @Field({ description: 'Signed, expiring link (SIGNED_URL_TTL_SECONDS); without its query string the path takes an API key instead.' }) url: string;
  @Field(() => GraphQLDateTime) expiresAt: Date;
}

@ObjectType()
export class CreateDatasetPayload {
  @Field(() => Dataset, { nullable: true }) dataset?: Dataset | null;
  @Field(() => [UserError]) userErrors: UserError[];
}

@Resolver(() => Dataset)
export class DatasetsResolver {
  constructor(private readonly datasetsService: DatasetsService, private readonly signer: UrlSigner, private readonly selectorsService: SelectorsService) {}

  @Authorized(Role.CURATOR)
  @Mutation(() => CreateDatasetPayload, { description: 'Applies a selection rule and freezes the chosen candidates as a new version of the named dataset.' })
  async createDataset(@Ctx() { ctx }: GraphQLContext, @Arg('input') input: CreateDatasetInput): Promise<CreateDatasetPayload> {
    return asPayload(async () => ({ dataset: await this.datasetsService.create(ctx, input) }));
  }

  @FieldResolver(() => [DatasetExport])
  exports(@Root() dataset: Dataset, @Ctx() { baseUrl }: GraphQLContext): DatasetExport[] {
    return Object.values(DatasetExportFormat).map((format) => {
      const { path, expiresAt } = signedDatasetExportPath(this.signer, dataset.id, format);
      return { format, url: `${baseUrl}${path}`, expiresAt };
    });
  }

  @FieldResolver(() => SelectorModel, { nullable: true, description: 'The selector (and so its version) whose scores ranked the items.' })
  async selectorModel(@Root() dataset: Dataset, @Ctx() { ctx }: GraphQLContext): Promise<SelectorModel | null> {
    return dataset.selectorModelId ? selectorModelByIdLoader(ctx, this.selectorsService).load(dataset.selectorModelId) : null;
  }

  @Query(() => DatasetConnection)
  async datasets(@Ctx() { ctx }: GraphQLContext, @Args() page: PageArgs): Promise<DatasetConnection> {
    return connectionOf(DatasetConnection, await this.datasetsService.list(ctx, page));
  }

  @FieldResolver(() => DatasetItemConnection, { description: 'Items in rank order.' })
  async items(@Root() dataset: Dataset, @Ctx() { ctx }: GraphQLContext, @Args() page: PageArgs): Promise<DatasetItemConnection> {
    return connectionOf(DatasetItemConnection, await this.datasetsService.items(ctx, dataset.id, page));
  }
}

@Resolver(() => DatasetItem)
export class DatasetItemsResolver {
  constructor(private readonly candidatesService: CandidatesService) {}

  @FieldResolver(() => Candidate)
  async candidate(@Root() item: DatasetItem, @Ctx() { ctx }: GraphQLContext): Promise<Candidate | null> {
    return candidateByIdLoader(ctx, this.candidatesService).load(item.candidateId);
  }
}
