import { Arg, Args, Authorized, Ctx, Field, Int, Mutation, ObjectType, Query, Resolver } from 'type-graphql';
import type { AppConfig } from '../../platform/config';
import type { SelectorsService } from './selectors.service';
import { ConnectionType, connectionOf, PageArgs } from '../../platform/pagination';
import { notFound } from '../../platform/errors';
import { expectGlobalId } from '../../platform/ids';
import { readUpload } from '../../platform/uploads';
import { asPayload, UserError, userError, UserErrorCode, UserErrorsException } from '../../platform/user-errors';
import type { GraphQLContext } from '../projects/graphql-context';
import { Role } from '../projects/role';
import { SelectorModel } from './selector-model.entity';
import { ActivateSelectorModelInput, RegisterSelectorModelInput } from './selectors.inputs';
import { SelectorFiles } from './selectors.service';

@ObjectType()
export class SelectorModelConnection extends ConnectionType(SelectorModel, 'SelectorModel') {}

@ObjectType()
export class SelectorModelPayload {
  @Field(() => SelectorModel, { nullable: true }) selectorModel?: SelectorModel | null;
  @Field(() => [UserError]) userErrors: UserError[];
}

@Resolver(() => SelectorModel)
export class SelectorsResolver {
  constructor(private readonly selectorsService: SelectorsService, private readonly config: Pick<AppConfig, 'SELECTOR_MAX_BYTES'>) {}

  @Query(() => SelectorModelConnection)
  async selectorModels(
    @Ctx() { ctx }: GraphQLContext,
    @Args() page: PageArgs,
    @Arg('activeOnly', () => Boolean, { nullable: true }) activeOnly?: boolean,
  ): Promise<SelectorModelConnection> {
    return connectionOf(SelectorModelConnection, await this.selectorsService.list(ctx, page, activeOnly));
  }

  @Query(() => SelectorModel, { nullable: true, description: 'A selector of the project by name and version; the latest version of the name when `version` is omitted. NOT_FOUND when there is none.' })
  async selectorModel(
    @Ctx() { ctx }: GraphQLContext,
    @Arg('name', () => String) name: string,
    @Arg('version', () => Int, { nullable: true }) version?: number | null,
  ): Promise<SelectorModel> {
    const model = await this.selectorsService.findByName(ctx, name, version);
    if (!model) throw notFound('SelectorModel');
    return model;
  }

  @Authorized(Role.CURATOR)
  @Mutation(() => SelectorModelPayload, {
    description: 'Validates a selector (it loads in ONNX Runtime, its inputs and output fit the contract, a dry run on a real sample is finite), stores its files and records a version.',
  })
  async registerSelectorModel(@Ctx() { ctx }: GraphQLContext, @Arg('input') input: RegisterSelectorModelInput): Promise<SelectorModelPayload> {
    return asPayload(async () => {
      const files = await this.readFiles(input);
      return { selectorModel: await this.selectorsService.register(ctx, { name: input.name, description: input.description, files, activate: input.activate }) };
    });
  }

  @Authorized(Role.CURATOR)
  @Mutation(() => SelectorModelPayload, { description: "Makes a selector the project's active one (the default for scoring runs and datasets)." })
  async activateSelectorModel(@Ctx() { ctx }: GraphQLContext, @Arg('input') input: ActivateSelectorModelInput): Promise<SelectorModelPayload> {
    return asPayload(async () => ({ selectorModel: await this.selectorsService.activate(ctx, expectGlobalId(input.selectorModelId, 'SelectorModel', 'input.selectorModelId')) }));
  }

  private async readFiles(input: RegisterSelectorModelInput): Promise<SelectorFiles> {
    const uploads = { model: input.model, tokenizer: input.tokenizer, manifest: input.manifest };
    const anyUpload = Object.values(uploads).some(Boolean);
    if (input.serverPath && anyUpload) throw new UserErrorsException([userError(UserErrorCode.INVALID, 'Give uploads or serverPath, not both', ['input', 'serverPath'])]);
    if (input.serverPath) return this.selectorsService.readServerFolder(input.serverPath);
    const maxBytes = this.config.SELECTOR_MAX_BYTES;
    const read = async (name: keyof typeof uploads) => (uploads[name] ? (await readUpload(uploads[name]!, maxBytes, ['input', name])).bytes : null);
    // Read side by side: a multipart body reaches each file only after the ones before it are consumed, in whatever order the client sent them.
    const [model, tokenizer, manifest] = await Promise.all([read('model'), read('tokenizer'), read('manifest')]);
    return { model, tokenizer, manifest };
  }
}
