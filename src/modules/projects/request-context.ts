import { Role, roleAtLeast } from './role';
import { DomainError, ErrorCode } from '../../platform/errors';

/** The user id of work no user started (seeds, system runs). */
export const SYSTEM_USER_ID = '00000000-0000-0000-0000-000000000000';

/**
 * Who is calling and for which project, created once per HTTP request or subscription event.
 * Services take it first and scope every query by `projectId`. Loaders live here so that each
 * request batches and caches on its own and never sees another caller's rows.
 */
export class RequestContext {
  private readonly loaders = new Map<string, unknown>();
  /** The operation's request id (x-request-id, or generated): passed on to the jobs it starts. */
  requestId: string | null = null;

  constructor(
    readonly projectId: string,
    readonly userId: string,
    readonly role: Role,
    readonly apiKeyId: string | null,
  ) {}

  /**
   * A worker acting for a run: scoped to the run's project like any caller, with the rights the run
   * was started with already checked when it was created.
   */
  static forWorker(projectId: string, actingUserId: string | null): RequestContext {
    return new RequestContext(projectId, actingUserId ?? SYSTEM_USER_ID, Role.OWNER, null);
  }

  /** The same caller with empty loaders: one per operation on a socket, one per subscription event. */
  fresh(): RequestContext {
    return new RequestContext(this.projectId, this.userId, this.role, this.apiKeyId);
  }

  /** The per-request instance of a loader, created on first use. */
  loader<T>(key: string, create: () => T): T {
    let loader = this.loaders.get(key) as T | undefined;
    if (!loader) {
      loader = create();
      this.loaders.set(key, loader);
    }
    return loader;
  }

  assertRole(needed: Role): void {
    if (!roleAtLeast(this.role, needed)) {
      throw new DomainError(ErrorCode.FORBIDDEN, `This needs the ${needed} role or higher in the project`);
    }
  }
}
