import { DataSource } from 'typeorm';

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

/** Content-addressed or derived keys only: a put of an existing key keeps the first write. */
export class PostgresBlobStorage implements BlobStorage {
  constructor(private readonly ds: DataSource) {}

  async put(key: string, bytes: Buffer, contentType: string): Promise<void> {
    await this.ds.query(
      `INSERT INTO blob_objects (key, content_type, byte_size, data) VALUES ($1, $2, $3, $4)
       ON CONFLICT (key) DO NOTHING`,
      [key, contentType, bytes.length, bytes],
    );
  }

  async get(key: string): Promise<{ bytes: Buffer; contentType: string } | null> {
    const rows: { data: Buffer; content_type: string }[] = await this.ds.query(
      `SELECT data, content_type FROM blob_objects WHERE key = $1`,
      [key],
    );
    return rows[0] ? { bytes: rows[0].data, contentType: rows[0].content_type } : null;
  }

  async getMany(keys: readonly string[]): Promise<Map<string, Buffer>> {
    if (keys.length === 0) return new Map();
    const rows: { key: string; data: Buffer }[] = await this.ds.query(`SELECT key, data FROM blob_objects WHERE key = ANY($1::text[])`, [keys]);
    return new Map(rows.map((r) => [r.key, r.data]));
  }

  async exists(key: string): Promise<boolean> {
    const rows = await this.ds.query(`SELECT 1 FROM blob_objects WHERE key = $1`, [key]);
    return rows.length > 0;
  }
}
