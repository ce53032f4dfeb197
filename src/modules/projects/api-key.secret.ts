import crypto from 'node:crypto';

const PREFIX = 'bmv_';

export function generateApiKeySecret(): { secret: string; prefix: string; hash: string } {
  const secret = PREFIX + crypto.randomBytes(32).toString('base64url');
  return { secret, prefix: secret.slice(0, 12), hash: hashApiKeySecret(secret) };
}

export function hashApiKeySecret(secret: string): string {
  return crypto.createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** Reads `Authorization: Bearer <key>`; anything else is no key. */
export function bearerToken(header: string | undefined | null): string | null {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return match ? match[1] : null;
}
