import { Field, InputType } from 'type-graphql';
import { IsOptional, MaxLength } from 'class-validator';
import { GraphQLUpload } from 'graphql-upload-minimal';
import type { FileUpload } from 'graphql-upload-minimal';

@InputType({
  description:
    'An encoder (DESIGN.md §5, issue 11): upload model.onnx, tokenizer.json and encoder.json as a GraphQL multipart request, or name a server folder holding them (allowed by SELECTOR_IMPORT_DIRS).',
})
export class RegisterEncoderModelInput {
  @Field({ description: 'Versions are numbered per name; the same files under the same name return the existing version.' })
  @MaxLength(100)
  name: string;

  @Field(() => String, { nullable: true })
  @IsOptional()
  @MaxLength(2000)
  description?: string | null;

  @Field(() => GraphQLUpload, { nullable: true, description: 'model.onnx' })
  @IsOptional()
  model?: Promise<FileUpload> | null;

  @Field(() => GraphQLUpload, { nullable: true, description: 'tokenizer.json (Hugging Face tokenizers format)' })
  @IsOptional()
  tokenizer?: Promise<FileUpload> | null;

  @Field(() => GraphQLUpload, { nullable: true, description: 'encoder.json, the manifest' })
  @IsOptional()
  manifest?: Promise<FileUpload> | null;

  @Field(() => String, { nullable: true, description: 'A folder on the server with the three files, instead of uploads.' })
  @IsOptional()
  @MaxLength(1000)
  serverPath?: string | null;
}
