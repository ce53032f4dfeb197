import { Field, ID, InputType } from 'type-graphql';
import { IsEmail, IsOptional, IsString, Length, MaxLength } from 'class-validator';
import { Role } from './role';

@InputType()
export class AddMemberInput {
  @Field() @IsEmail() @MaxLength(254) email: string;
  @Field() @IsString() @Length(1, 200) displayName: string;
  @Field(() => Role) role: Role;
}

@InputType()
export class CreateApiKeyInput {
  @Field() @IsString() @Length(1, 100) name: string;
  @Field(() => ID, { nullable: true, description: 'A Membership id; the key acts for that member. Default: yourself.' })
  @IsOptional()
  memberId?: string | null;
}

@InputType()
export class RevokeApiKeyInput {
  @Field(() => ID) id: string;
}
