import { ArgsType, Field, ID, InputType } from 'type-graphql';
import { ArrayMaxSize, IsOptional } from 'class-validator';
import { GraphQLJSON } from 'graphql-scalars';
import { GraphQLUpload, FileUpload } from 'graphql-upload-minimal';
import { PageArgs } from '../../platform/pagination';
import { Modality } from '../images/modality';
import { MAX_RECORDS_PER_IMPORT } from './records-import.service';

@InputType()
export class DemonstrationFilter {
  @Field(() => [Modality], { nullable: true }) @IsOptional() modalities?: Modality[] | null;
  @Field(() => Boolean, { nullable: true }) @IsOptional() active?: boolean | null;
}

@ArgsType()
export class DemonstrationsArgs extends PageArgs {
  @Field(() => DemonstrationFilter, { nullable: true }) @IsOptional() filter?: DemonstrationFilter | null;
}

@InputType({ description: 'Figure records (LLaVA-Med / BioMed-VITAL JSON) inline or as a file, with optional image files matched by name.' })
export class ImportRecordsInput {
  @Field(() => GraphQLJSON, { nullable: true, description: `A JSON array of records (at most ${MAX_RECORDS_PER_IMPORT}).` })
  @IsOptional()
  records?: unknown;

  @Field(() => GraphQLUpload, { nullable: true, description: 'The records as a JSON file, instead of `records`.' })
  @IsOptional()
  recordsFile?: Promise<FileUpload> | null;

  @Field(() => [GraphQLUpload], { nullable: true, description: "Image files; each is matched to the record whose `imgs` is its file name." })
  @IsOptional()
  @ArrayMaxSize(1000)
  images?: Promise<FileUpload>[] | null;

  @Field(() => Boolean, { defaultValue: true, description: 'Records with conversations become active demonstrations.' })
  createDemonstrations: boolean;
}

@InputType()
export class SetDemonstrationActiveInput {
  @Field(() => ID) id: string;
  @Field() active: boolean;
}
