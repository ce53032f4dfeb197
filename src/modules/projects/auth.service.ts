import { DataSource } from 'typeorm';
import { DomainError, ErrorCode } from '../../platform/errors';
import { RequestContext } from './request-context';
import { Role } from './role';
import { bearerToken, hashApiKeySecret } from './api-key.secret';

const LAST_USED_RESOLUTION_SECONDS = 60;

/** Turns an API key into a request context: one indexed read, and a throttled last-used write. */
export class AuthService {
  constructor(private readonly ds: DataSource) {}

  async authenticateHeader(authorization: string | undefined | null): Promise<RequestContext> {
    const token = bearerToken(authorization);
    if (!token) throw new DomainError(ErrorCode.UNAUTHENTICATED, 'Send an API key as `Authorization: Bearer <key>`');
    return this.authenticateKey(token);
  }

  async authenticateKey(secret: string): Promise<RequestContext> {
    const rows: { id: string; user_id: string; project_id: string; role: Role; stale: boolean }[] = await this.ds.query(
      `SELECT k.id, k.user_id, k.project_id, m.role,
              (k.last_used_at IS NULL OR k.last_used_at < now() - make_interval(secs => $2)) AS stale
         FROM api_keys k
         JOIN memberships m ON m.project_id = k.project_id AND m.user_id = k.user_id
        WHERE k.secret_hash = $1 AND k.revoked_at IS NULL`,
      [hashApiKeySecret(secret), LAST_USED_RESOLUTION_SECONDS],
    );
    const key = rows[0];
    if (!key) throw new DomainError(ErrorCode.UNAUTHENTICATED, 'Unknown or revoked API key');
    if (key.stale) await this.ds.query(`UPDATE api_keys SET last_used_at = now() WHERE id = $1`, [key.id]);
    return new RequestContext(key.project_id, key.user_id, key.role, key.id);
  }
}
