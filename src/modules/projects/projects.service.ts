import { DataSource, EntityManager } from 'typeorm';
import { DomainError, ErrorCode, notFound, badInput } from '../../platform/errors';
import { applyKeyset, PageArgs, SortDirection, toConnection, ConnectionShape } from '../../platform/pagination';
import { RequestContext } from './request-context';
import { Project } from './project.entity';
import { User } from './user.entity';
import { Membership } from './membership.entity';
import { ApiKey } from './api-key.entity';
import { Role } from './role';
import { generateApiKeySecret } from './api-key.secret';
import { notifyAccessChange } from '../../platform/access-events';

export interface CreatedApiKey {
  apiKey: ApiKey;
  /** Shown once; only its hash is stored. */
  secret: string;
}

const SLUG = /^[a-z0-9][a-z0-9-]{1,62}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Projects, their members and API keys: the tenancy of the product. */
export class ProjectsService {
  constructor(private readonly ds: DataSource) {}

  /** Creates a project with an owner and the owner's first key. For the CLI and seeds, not the API. */
  async bootstrapProject(input: { name: string; slug: string; ownerEmail: string; ownerName: string; keyName?: string }): Promise<{ project: Project; owner: User } & CreatedApiKey> {
    if (!SLUG.test(input.slug)) throw badInput('slug: 2-63 lower-case letters, digits or dashes', 'slug');
    return this.ds.transaction(async (em) => {
      const existing = await em.findOneBy(Project, { slug: input.slug });
      if (existing) throw new DomainError(ErrorCode.CONFLICT, `A project with slug "${input.slug}" exists`, 'slug');
      const project = await em.save(em.create(Project, { name: input.name, slug: input.slug }));
      const owner = await this.upsertUser(em, input.ownerEmail, input.ownerName);
      await em.save(em.create(Membership, { projectId: project.id, userId: owner.id, role: Role.OWNER, displayName: input.ownerName }));
      const key = await this.insertApiKey(em, project.id, owner.id, input.keyName ?? 'first key');
      return { project, owner, ...key };
    });
  }

  async findProjectBySlug(slug: string): Promise<Project | null> {
    return this.ds.getRepository(Project).findOneBy({ slug });
  }

  /** A key for an existing member, without a request context. For the CLI. */
  async createKeyForMember(projectId: string, email: string, name: string): Promise<CreatedApiKey> {
    const user = await this.ds.getRepository(User).findOneBy({ email: email.toLowerCase() });
    const member = user && (await this.ds.getRepository(Membership).findOneBy({ projectId, userId: user.id }));
    if (!user || !member) throw notFound(`Member ${email}`);
    return this.insertApiKey(this.ds.manager, projectId, user.id, name);
  }

  async currentProject(ctx: RequestContext): Promise<Project> {
    return this.ds.getRepository(Project).findOneByOrFail({ id: ctx.projectId });
  }

  async currentUser(ctx: RequestContext): Promise<User> {
    const [user] = await this.membersAsUsers(ctx.projectId, [ctx.userId]);
    if (!user) throw notFound('User');
    return user;
  }

  /**
   * Adds a member, or changes their role and the name the project knows them by. The answer is the
   * same whether the email belongs to a user of other projects or not: the user shows the name given
   * here and the membership's timestamps, so adding a member reveals nothing about other projects.
   */
  async addMember(ctx: RequestContext, input: { email: string; displayName: string; role: Role }): Promise<Membership> {
    return this.ds.transaction(async (em) => {
      const user = await this.upsertUser(em, input.email, input.displayName);
      if (user.id === ctx.userId) throw new DomainError(ErrorCode.CONFLICT, 'You cannot change your own role', 'email');
      await em
        .createQueryBuilder()
        .insert()
        .into(Membership)
        .values({ projectId: ctx.projectId, userId: user.id, role: input.role, displayName: input.displayName })
        .orUpdate(['role', 'display_name', 'updated_at'], ['project_id', 'user_id'])
        .execute();
      // A role change reaches open WebSocket connections of that member on every api process (on commit).
      await notifyAccessChange(em, { projectId: ctx.projectId, userId: user.id });
      return em.findOneByOrFail(Membership, { projectId: ctx.projectId, userId: user.id });
    });
  }

  async createApiKey(ctx: RequestContext, input: { name: string; memberId?: string | null }): Promise<CreatedApiKey> {
    let userId = ctx.userId;
    if (input.memberId) {
      const member = await this.ds.getRepository(Membership).findOneBy({ id: input.memberId, projectId: ctx.projectId });
      if (!member) throw new DomainError(ErrorCode.NOT_FOUND, 'Member not found', 'memberId');
      userId = member.userId;
    }
    return this.insertApiKey(this.ds.manager, ctx.projectId, userId, input.name);
  }

  async revokeApiKey(ctx: RequestContext, id: string): Promise<ApiKey> {
    const repo = this.ds.getRepository(ApiKey);
    const key = await repo.findOneBy({ id, projectId: ctx.projectId });
    if (!key) throw new DomainError(ErrorCode.NOT_FOUND, 'API key not found', 'id');
    if (!key.revokedAt) {
      await this.ds.transaction(async (em) => {
        await em.getRepository(ApiKey).update({ id, projectId: ctx.projectId }, { revokedAt: () => 'now()' } as never);
        // Connections opened with the key close on every api process once this commits.
        await notifyAccessChange(em, { apiKeyId: id });
      });
    }
    return repo.findOneByOrFail({ id });
  }

  async listMembers(ctx: RequestContext, page: PageArgs): Promise<ConnectionShape<Membership>> {
    const base = () => this.ds.getRepository(Membership).createQueryBuilder('m').where('m.projectId = :p', { p: ctx.projectId });
    const rows = await applyKeyset(base(), { sortExpr: 'm.createdAt', idExpr: 'm.id', direction: SortDirection.ASC }, page).getMany();
    return toConnection(rows, page, (m) => ({ value: m.createdAt, id: m.id }), () => base().getCount());
  }

  async listApiKeys(ctx: RequestContext, page: PageArgs): Promise<ConnectionShape<ApiKey>> {
    const base = () => this.ds.getRepository(ApiKey).createQueryBuilder('k').where('k.projectId = :p', { p: ctx.projectId });
    const rows = await applyKeyset(base(), { sortExpr: 'k.createdAt', idExpr: 'k.id', direction: SortDirection.DESC }, page).getMany();
    return toConnection(rows, page, (k) => ({ value: k.createdAt, id: k.id }), () => base().getCount());
  }

  async findProject(ctx: RequestContext, id: string): Promise<Project | null> {
    return id === ctx.projectId ? this.currentProject(ctx) : null;
  }

  async findMembership(ctx: RequestContext, id: string): Promise<Membership | null> {
    return this.ds.getRepository(Membership).findOneBy({ id, projectId: ctx.projectId });
  }

  async findApiKey(ctx: RequestContext, id: string): Promise<ApiKey | null> {
    return this.ds.getRepository(ApiKey).findOneBy({ id, projectId: ctx.projectId });
  }

  /** A user is visible only to the projects it is a member of. */
  async findUser(ctx: RequestContext, id: string): Promise<User | null> {
    const [user] = await this.membersAsUsers(ctx.projectId, [id]);
    return user ?? null;
  }

  /** The members (all, or those with these user ids) with their role and the name the project knows them by. */
  async memberRoles(ctx: RequestContext, userIds?: readonly string[]): Promise<{ userId: string; role: Role; displayName: string }[]> {
    const qb = this.ds.getRepository(Membership).createQueryBuilder('m').where('m.projectId = :p', { p: ctx.projectId });
    if (userIds) qb.andWhere('m.userId = ANY(:ids::uuid[])', { ids: userIds.filter((id) => UUID.test(id)) });
    const rows = await qb.orderBy('m.createdAt', 'ASC').addOrderBy('m.id', 'ASC').getMany();
    return rows.map((m) => ({ userId: m.userId, role: m.role, displayName: m.displayName }));
  }

  /** Batch lookup of member users by id, for loaders. */
  async usersByIds(ctx: RequestContext, ids: readonly string[]): Promise<User[]> {
    return this.membersAsUsers(ctx.projectId, ids);
  }

  /**
   * Members as the project sees them, in one statement: email and id of the user, the name and
   * timestamps of the membership. Nothing another project set (its name for the user, when the
   * user first joined anywhere) shows through.
   */
  private async membersAsUsers(projectId: string, userIds: readonly string[]): Promise<User[]> {
    const ids = userIds.filter((id) => UUID.test(id));
    if (ids.length === 0) return [];
    const rows: { id: string; email: string; display_name: string; created_at: Date; updated_at: Date }[] = await this.ds.query(
      `SELECT u.id, u.email, m.display_name, m.created_at, m.updated_at
         FROM memberships m JOIN users u ON u.id = m.user_id
        WHERE m.project_id = $1 AND m.user_id = ANY($2::uuid[])`,
      [projectId, ids],
    );
    return rows.map((r) => this.ds.getRepository(User).create({ id: r.id, email: r.email, displayName: r.display_name, createdAt: r.created_at, updatedAt: r.updated_at }));
  }

  private async upsertUser(em: EntityManager, email: string, displayName: string): Promise<User> {
    const normalized = email.trim().toLowerCase();
    await em
      .createQueryBuilder()
      .insert()
      .into(User)
      .values({ email: normalized, displayName })
      .orIgnore()
      .execute();
    return em.findOneByOrFail(User, { email: normalized });
  }

  private async insertApiKey(em: EntityManager, projectId: string, userId: string, name: string): Promise<CreatedApiKey> {
    const { secret, prefix, hash } = generateApiKeySecret();
    const apiKey = await em.save(em.create(ApiKey, { projectId, userId, name, prefix, secretHash: hash, lastUsedAt: null, revokedAt: null }));
    return { apiKey, secret };
  }
}
