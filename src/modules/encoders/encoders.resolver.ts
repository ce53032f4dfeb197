import { Args, Arg, Authorized, Ctx, Field, FieldResolver, Int, Mutation, ObjectType, Query, Resolver, Root } from 'type-graphql';
import type { AppConfig } from '../../platform/config';
import { ConnectionType, connectionOf, PageArgs } from '../../platform/pagination';
import { readUpload } from '../../platform/uploads';
import { asPayload, UserError, userError, UserErrorCode, UserErrorsException } from '../../platform/user-errors';
import type { GraphQLContext } from '../projects/graphql-context';
import { Role } from '../projects/role';
import { EncoderModel } from './encoder-model.entity';
import { RegisterEncoderModelInput } from './encoders.inputs';
import type { EncoderFiles, EncodersService } from './encoders.service';

@ObjectType()
export class EncoderModelConnection extends ConnectionType(EncoderModel, 'EncoderModel') {}

@ObjectType()
export class EncoderModelPayload {
  @Field(() => EncoderModel, { nullable: true }) encoderModel?: EncoderModel | null;
  @Field(() => [UserError]) userErrors: UserError[];
}

@ObjectType({ description: 'Embeddings stored for an encoder: computed once per image and per text.' })
export class StoredEmbeddingCounts {
  @Field(() => Int) images: number;
  @Field(() => Int) texts: number;
}

@Resolver(() => EncoderModel)
export class EncodersResolver {
  constructor(
    private readonly encodersService: EncodersService,
    private readonly config: Pick<AppConfig, 'SELECTOR_MAX_BYTES'>,
  ) {}

  @Query(() => EncoderModelConnection, { description: 'The encoders of the project, newest first.' })
  async encoderModels(@Ctx() { ctx }: GraphQLContext, @Args() page: PageArgs): Promise<EncoderModelConnection> {
    return connectionOf(EncoderModelConnection, await this.encodersService.list(ctx, page));
  }

  @Authorized(Role.CURATOR)
  @Mutation(() => EncoderModelPayload, {
    description:
      'Validates an encoder (it loads in ONNX Runtime, its inputs are the selector contract\'s, its outputs image_embeds [N, Di] and text_embeds [N, Dt] fit encoder.json, a dry run on a real sample is finite), stores its files and records a version.',
  })
  async registerEncoderModel(@Ctx() { ctx }: GraphQLContext, @Arg('input') input: RegisterEncoderModelInput): Promise<EncoderModelPayload> {
    return asPayload(async () => ({ encoderModel: await this.encodersService.register(ctx, { name: input.name, description: input.description, files: await this.readFiles(input) }) }));
  }

  @FieldResolver(() => StoredEmbeddingCounts)
  async storedEmbeddings(@Root() encoder: EncoderModel, @Ctx() { ctx }: GraphQLContext): Promise<StoredEmbeddingCounts> {
    const counts = await this.encodersService.embeddingCounts(ctx, encoder.id);
    return { images: counts.image, texts: counts.text };
  }

  private async readFiles(input: RegisterEncoderModelInput): Promise<EncoderFiles> {
    const uploads = { model: input.model, tokenizer: input.tokenizer, manifest: input.manifest };
    const anyUpload = Object.values(uploads).some(Boolean);
    if (input.serverPath && anyUpload) throw new UserErrorsException([userError(UserErrorCode.INVALID, 'Give uploads or serverPath, not both', ['input', 'serverPath'])]);
    if (input.serverPath) return this.encodersService.readServerFolder(input.serverPath);
    const maxBytes = this.config.SELECTOR_MAX_BYTES;
    const read = async (name: keyof typeof uploads) => (uploads[name] ? (await readUpload(uploads[name]!, maxBytes, ['input', name])).bytes : null);
    const [model, tokenizer, manifest] = await Promise.all([read('model'), read('tokenizer'), read('manifest')]);
    return { model, tokenizer, manifest };
  }
}
