import { ArgsType, Field, ID, InputType, Int, registerEnumType } from 'type-graphql';
import { ArrayMaxSize, IsOptional, IsString, MaxLength, Min, ValidateNested } from 'class-validator';
import { GraphQLUpload, FileUpload } from 'graphql-upload-minimal';
import { PageArgs, SortDirection } from '../../platform/pagination';
import { Modality } from './modality';

@InputType({ description: 'Figure metadata, as in PMC / LLaVA-Med records.' })
export class ImageMetadataInput {
  @Field(() => String, { nullable: true }) @IsOptional() @IsString() @MaxLength(64) pmid?: string | null;
  @Field(() => String, { nullable: true }) @IsOptional() @IsString() @MaxLength(128) pairId?: string | null;
  @Field(() => String, { nullable: true }) @IsOptional() @IsString() @MaxLength(128) figLabel?: string | null;
  @Field(() => String, { nullable: true }) @IsOptional() @IsString() @MaxLength(128) figId?: string | null;
  @Field(() => String, { nullable: true }) @IsOptional() @IsString() @MaxLength(512) graphicRef?: string | null;
  @Field(() => String, { nullable: true }) @IsOptional() @IsString() @MaxLength(20000) caption?: string | null;
  @Field(() => [String], { nullable: true }) @IsOptional() @ArrayMaxSize(200) @IsString({ each: true }) @MaxLength(20000, { each: true }) mentions?: string[] | null;
  @Field(() => [Modality], { nullable: true }) @IsOptional() @ArrayMaxSize(6) modalities?: Modality[] | null;
}

@InputType()
export class UploadImageInput {
  @Field(() => GraphQLUpload, { nullable: true, description: 'The image file, sent as a GraphQL multipart request; give this or `url`.' })
  file?: Promise<FileUpload> | null;

  @Field(() => String, { nullable: true, description: 'An http(s) URL the server fetches the image from (private addresses refused, size and time limited); give this or `file`.' })
  @IsOptional()
  @IsString()
  @MaxLength(2048)
  url?: string | null;

  @Field(() => ImageMetadataInput, { nullable: true })
  @IsOptional()
  @ValidateNested()
  metadata?: ImageMetadataInput | null;
}

@InputType()
export class ImageFilter {
  @Field(() => [Modality], { nullable: true, description: 'Images with any of these modalities.' })
  @IsOptional()
  modalities?: Modality[] | null;

  @Field(() => String, { nullable: true, description: 'Full-text search in the caption (web-search syntax).' })
  @IsOptional()
  @IsString()
  @MaxLength(200)
  captionSearch?: string | null;

  @Field(() => Int, { nullable: true })
  @IsOptional()
  @Min(0)
  clusterId?: number | null;

  @Field(() => Boolean, { nullable: true })
  @IsOptional()
  hasCandidates?: boolean | null;

  @Field(() => Boolean, { nullable: true, description: 'Only images whose bytes are stored.' })
  @IsOptional()
  hasBytes?: boolean | null;
}

export enum ImageSortField {
  CREATED_AT = 'CREATED_AT',
}
registerEnumType(ImageSortField, { name: 'ImageSortField', description: 'What images are sorted by.', valuesConfig: { CREATED_AT: { description: 'When the image was created.' } } });

@InputType()
export class ImageOrder {
  @Field(() => ImageSortField, { defaultValue: ImageSortField.CREATED_AT }) field: ImageSortField;
  @Field(() => SortDirection, { defaultValue: SortDirection.DESC }) direction: SortDirection;
}

@ArgsType()
export class ImagesArgs extends PageArgs {
  @Field(() => ImageFilter, { nullable: true })
  @IsOptional()
  @ValidateNested()
  filter?: ImageFilter | null;

  @Field(() => ImageOrder, { nullable: true })
  @IsOptional()
  orderBy?: ImageOrder | null;
}

@InputType({ description: 'Which images: explicit ids, or a filter (an empty filter selects every image).' })
export class ImageSelectionInput {
  @Field(() => [ID], { nullable: true })
  @IsOptional()
  @ArrayMaxSize(10000)
  imageIds?: string[] | null;

  @Field(() => ImageFilter, { nullable: true })
  @IsOptional()
  @ValidateNested()
  filter?: ImageFilter | null;
}
