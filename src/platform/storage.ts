import type { Pool } from 'pg';
import { DataSource } from 'typeorm';
import { copyOutBinary, quoteLiteral } from './pg-binary-copy';

/**
 * Where image bytes and derived files live. Every api and worker process must be able to read what
 * any other wrote, so the default keeps them in Postgres; an object store can implement the same
 * interface.
 */
export interface BlobStorage {
  put(key: string, bytes: Buffer, contentType: string): Promise<void>;
  get(key: string): Promise<{ bytes: Buffer; contentType: string } | null>;
  exists(key: string): Promise<boolean>;
  /** Many objects in one round trip; keys not stored are absent from the map. */
  getMany(keys: readonly string[]): Promise<Map<string, Buffer>>;
}

/**
 * Content-addressed or derived keys only: a put of an existing key keeps the first write.
 * Bytes are read in Postgres's binary COPY format (platform/pg-binary-copy.ts): as text, a bytea
 * comes as hex that the driver decodes on the main thread (issue 14).
 */
export class PostgresBlobStorage implements BlobStorage {
  constructor(private readonly ds: DataSource) {}

  private get pool(): Pool {
    return (this.ds.driver as unknown as { master: Pool }).master;
  }

  /** `key IN (…)` for a COPY, which takes no parameters. */
  private static keyIn(keys: readonly string[]): string {
    return `key IN (${keys.map(quoteLiteral).join(', ')})`;
  }

  async put(key: string, bytes: Buffer, contentType: string): Promise<void> {
    await this.ds.query(
      `INSERT INTO blob_objects (key, content_type, byte_size, data) VALUES ($1, $2, $3, $4)
       ON CONFLICT (key) DO NOTHING`,
      [key, contentType, bytes.length, bytes],
    );
  }

  async get(key: string): Promise<{ bytes: Buffer; contentType: string } | null> {
    const [row] = await copyOutBinary(this.pool, `SELECT data, content_type FROM blob_objects WHERE ${PostgresBlobStorage.keyIn([key])}`);
    return row ? { bytes: row[0]!, contentType: row[1]!.toString('utf8') } : null;
  }

  /** The values are views of one buffer per call: a caller that keeps one image for long should copy it. */
  async getMany(keys: readonly string[]): Promise<Map<string, Buffer>> {
    if (keys.length === 0) return new Map();
    const rows = await copyOutBinary(this.pool, `SELECT key, data FROM blob_objects WHERE ${PostgresBlobStorage.keyIn([...new Set(keys)])}`);
    return new Map(rows.map(([key, data]) => [key!.toString('utf8'), data!]));
  }

  async exists(key: string): Promise<boolean> {
    const rows = await this.ds.query(`SELECT 1 FROM blob_objects WHERE key = $1`, [key]);
    return rows.length > 0;
  }
}
