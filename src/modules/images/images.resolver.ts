import { Arg, Args, Authorized, Ctx, Field, FieldResolver, Mutation, ObjectType, Query, Resolver, Root } from 'type-graphql';
import type { AppConfig } from '../../platform/config';
import type { UrlSigner } from '../../platform/signing';
import type { ImagesService } from './images.service';
import { ConnectionType, connectionOf } from '../../platform/pagination';
import { asPayload, UserError } from '../../platform/user-errors';
import { readUpload } from '../../platform/uploads';
import { badInput } from '../../platform/errors';
import type { GraphQLContext } from '../projects/graphql-context';
import { Role } from '../projects/role';
import { Image } from './image.entity';
import { ImagesArgs, UploadImageInput } from './images.inputs';
import { ImageVariant } from './images.service';

@ObjectType()
export class ImageConnection extends ConnectionType(Image, 'Image') {}

@ObjectType()
export class UploadImagePayload {
  @Field(() => Image, { nullable: true }) image?: Image | null;
  @Field(() => [UserError]) userErrors: UserError[];
}

@Resolver(() => Image)
export class ImagesResolver {
  constructor(
    private readonly imagesService: ImagesService,
    private readonly config: Pick<AppConfig, 'MAX_UPLOAD_BYTES'>,
    private readonly signer: UrlSigner,
  ) {}

  @Query(() => ImageConnection, { description: 'Figures of the project, newest first by default.' })
  async images(@Ctx() { ctx }: GraphQLContext, @Args() args: ImagesArgs): Promise<ImageConnection> {
    return connectionOf(ImageConnection, await this.imagesService.list(ctx, args, args.filter, args.orderBy));
  }

  @FieldResolver(() => String, { nullable: true, description: 'Signed, expiring URL of the original file; null when only the record is stored.' })
  url(@Root() image: Image, @Ctx() context: GraphQLContext): string | null {
    return this.signedUrl(image, 'original', context);
  }

  @FieldResolver(() => String, { nullable: true, description: 'Signed, expiring URL of a WebP thumbnail.' })
  thumbnailUrl(@Root() image: Image, @Ctx() context: GraphQLContext): string | null {
    return this.signedUrl(image, 'thumbnail', context);
  }

  @Authorized(Role.CURATOR)
  @Mutation(() => UploadImagePayload, { description: 'Uploads one image (GraphQL multipart request), or fetches it from `url`, with its figure metadata.' })
  async uploadImage(@Ctx() { ctx }: GraphQLContext, @Arg('input') input: UploadImageInput): Promise<UploadImagePayload> {
    return asPayload(async () => {
      if ((input.file == null) === (input.url == null)) throw badInput('Give exactly one of file or url', 'input');
      if (input.url != null) return { image: await this.imagesService.uploadFromUrl(ctx, input.url, input.metadata) };
      const { bytes, fileName } = await readUpload(input.file!, this.config.MAX_UPLOAD_BYTES, ['input', 'file']);
      return { image: await this.imagesService.upload(ctx, bytes, fileName, input.metadata) };
    });
  }

  private signedUrl(image: Image, variant: ImageVariant, { baseUrl }: GraphQLContext): string | null {
    if (!image.contentHash) return null;
    const path = `/files/images/${image.id}/${variant}`;
    const { expires, signature } = this.signer.sign(path);
    return `${baseUrl}${path}?expires=${expires}&signature=${signature}`;
  }
}
