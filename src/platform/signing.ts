import crypto from 'node:crypto';
import { DataSource } from 'typeorm';

/**
 * HMAC-signed, expiring URLs so that a browser's <img> can load a file without an Authorization
 * header. The secret comes from configuration or, when unset, is created once in the database so
 * that every api process signs and verifies with the same one.
 */
export class UrlSigner {
  constructor(
    private readonly secret: string,
    private readonly ttlSeconds: number,
  ) {}

  sign(resource: string, now = Date.now()): { expires: number; signature: string } {
    const expires = Math.floor(now / 1000) + this.ttlSeconds;
    return { expires, signature: this.mac(resource, expires) };
  }

  verify(resource: string, expires: number, signature: string, now = Date.now()): boolean {
    return this.check(resource, expires, signature, now) === 'valid';
  }

  /**
   * `expired` only for a link this server signed (the signature matches), so that a forged or
   * tampered link never learns more than `invalid`.
   */
  check(resource: string, expires: number, signature: string, now = Date.now()): 'valid' | 'expired' | 'invalid' {
    if (!Number.isInteger(expires)) return 'invalid';
    const expected = Buffer.from(this.mac(resource, expires));
    const given = Buffer.from(signature);
    if (expected.length !== given.length || !crypto.timingSafeEqual(expected, given)) return 'invalid';
    return expires < Math.floor(now / 1000) ? 'expired' : 'valid';
  }

  /** `<path>?expires=…&signature=…` and when it stops working. */
  signPath(path: string, now = Date.now()): { query: string; expiresAt: Date } {
    const { expires, signature } = this.sign(path, now);
    return { query: `expires=${expires}&signature=${signature}`, expiresAt: new Date(expires * 1000) };
  }

  private mac(resource: string, expires: number): string {
    return crypto.createHmac('sha256', this.secret).update(`${resource}\n${expires}`).digest('base64url');
  }
}

export async function loadSigningSecret(ds: DataSource, configured?: string): Promise<string> {
  if (configured) return configured;
  await ds.query(
    `INSERT INTO app_settings (key, value) VALUES ('url_signing_secret', $1) ON CONFLICT (key) DO NOTHING`,
    [crypto.randomBytes(32).toString('base64url')],
  );
  const rows: { value: string }[] = await ds.query(`SELECT value FROM app_settings WHERE key = 'url_signing_secret'`);
  return rows[0].value;
}
