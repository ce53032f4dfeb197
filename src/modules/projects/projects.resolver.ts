import { Arg, Args, Authorized, Ctx, Field, FieldResolver, Mutation, ObjectType, Query, Resolver, Root } from 'type-graphql';
import type { ProjectsService } from './projects.service';
import { expectGlobalId } from '../../platform/ids';
import { ConnectionType, connectionOf, PageArgs } from '../../platform/pagination';
import { asPayload, UserError } from '../../platform/user-errors';
import type { GraphQLContext } from './graphql-context';
import { Role } from './role';
import { Project } from './project.entity';
import { User } from './user.entity';
import { Membership } from './membership.entity';
import { ApiKey } from './api-key.entity';
import { AddMemberInput, CreateApiKeyInput, RevokeApiKeyInput } from './projects.inputs';
import { userByIdLoader } from './projects.loaders';

@ObjectType()
export class MembershipConnection extends ConnectionType(Membership, 'Membership') {}

@ObjectType()
export class ApiKeyConnection extends ConnectionType(ApiKey, 'ApiKey') {}

@ObjectType({ description: 'Who the API key acts for.' })
export class Viewer {
  @Field(() => User) user: User;
  @Field(() => Project) project: Project;
  @Field(() => Role) role: Role;
}

@ObjectType()
export class AddMemberPayload {
  @Field(() => Membership, { nullable: true }) membership?: Membership | null;
  @Field(() => [UserError]) userErrors: UserError[];
}

@ObjectType()
export class CreateApiKeyPayload {
  @Field(() => ApiKey, { nullable: true }) apiKey?: ApiKey | null;
  @Field(() => String, { nullable: true, description: 'The secret, shown this once; only its hash is kept.' }) secret?: string | null;
  @Field(() => [UserError]) userErrors: UserError[];
}

@ObjectType()
export class RevokeApiKeyPayload {
  @Field(() => ApiKey, { nullable: true }) apiKey?: ApiKey | null;
  @Field(() => [UserError]) userErrors: UserError[];
}

@Resolver(() => Project)
export class ProjectsResolver {
  constructor(private readonly projectsService: ProjectsService) {}

  @Query(() => Viewer)
  async viewer(@Ctx() { ctx }: GraphQLContext): Promise<Viewer> {
    const [user, project] = await Promise.all([this.projectsService.currentUser(ctx), this.projectsService.currentProject(ctx)]);
    return { user, project, role: ctx.role };
  }

  @FieldResolver(() => MembershipConnection)
  async members(@Ctx() { ctx }: GraphQLContext, @Args() page: PageArgs): Promise<MembershipConnection> {
    return connectionOf(MembershipConnection, await this.projectsService.listMembers(ctx, page));
  }

  @Authorized(Role.OWNER)
  @FieldResolver(() => ApiKeyConnection, { description: 'Keys of all members; OWNER only.' })
  async apiKeys(@Ctx() { ctx }: GraphQLContext, @Args() page: PageArgs): Promise<ApiKeyConnection> {
    return connectionOf(ApiKeyConnection, await this.projectsService.listApiKeys(ctx, page));
  }

  @Authorized(Role.OWNER)
  @Mutation(() => AddMemberPayload, { description: 'Adds a user to the project, or changes their role.' })
  async addMember(@Ctx() { ctx }: GraphQLContext, @Arg('input') input: AddMemberInput): Promise<AddMemberPayload> {
    return asPayload(async () => ({ membership: await this.projectsService.addMember(ctx, input) }));
  }

  @Authorized(Role.OWNER)
  @Mutation(() => CreateApiKeyPayload)
  async createApiKey(@Ctx() { ctx }: GraphQLContext, @Arg('input') input: CreateApiKeyInput): Promise<CreateApiKeyPayload> {
    return asPayload(async () => {
      const memberId = input.memberId ? expectGlobalId(input.memberId, 'Membership', 'memberId') : null;
      return this.projectsService.createApiKey(ctx, { name: input.name, memberId });
    });
  }

  @Authorized(Role.OWNER)
  @Mutation(() => RevokeApiKeyPayload)
  async revokeApiKey(@Ctx() { ctx }: GraphQLContext, @Arg('input') input: RevokeApiKeyInput): Promise<RevokeApiKeyPayload> {
    return asPayload(async () => ({ apiKey: await this.projectsService.revokeApiKey(ctx, expectGlobalId(input.id, 'ApiKey')) }));
  }
}

@Resolver(() => Membership)
export class MembershipsResolver {
  constructor(private readonly projectsService: ProjectsService) {}

  @FieldResolver(() => User)
  async user(@Root() membership: Membership, @Ctx() { ctx }: GraphQLContext): Promise<User | null> {
    return userByIdLoader(ctx, this.projectsService).load(membership.userId);
  }
}

@Resolver(() => ApiKey)
export class ApiKeysResolver {
  constructor(private readonly projectsService: ProjectsService) {}

  @FieldResolver(() => User)
  async user(@Root() key: ApiKey, @Ctx() { ctx }: GraphQLContext): Promise<User | null> {
    return userByIdLoader(ctx, this.projectsService).load(key.userId);
  }
}
