import crypto from 'node:crypto';
import type { Pool } from 'pg';
import { startTestApp, TestApp } from '../support/test-app';
import { PostgresBlobStorage } from '../../src/platform/storage';
import { copyOutBinary, parseBinaryCopy, quoteLiteral } from '../../src/platform/pg-binary-copy';

/**
 * Blob bytes are read in Postgres's binary COPY format rather than as hex text (issue 14): what is
 * read must be exactly what was written, whatever the bytes and the keys, and a failing COPY must
 * leave the pool usable.
 */
describe('PostgresBlobStorage reads bytes in binary COPY format', () => {
  let app: TestApp;
  let storage: PostgresBlobStorage;
  let pool: Pool;

  beforeAll(async () => {
    app = await startTestApp();
    storage = new PostgresBlobStorage(app.ds);
    pool = (app.ds.driver as unknown as { master: Pool }).master;
  });
  afterAll(async () => {
    await app?.stop();
  });

  /** Every byte value, sequences UTF-8 cannot carry (what corrupts `binary: true` in node-postgres), a large random file, an empty one. */
  const blobs: Record<string, Buffer> = {
    'all-bytes': Buffer.from(Array.from({ length: 256 * 4 }, (_, i) => (i * 7) % 256)),
    'not-utf8': Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0xe8, 0x03, 0x00, 0x00, 0x80, 0xbf]),
    "quoted 'key' \\ ü 😀": Buffer.from('a key that needs quoting'),
    large: crypto.randomBytes(3 * 1024 * 1024 + 17),
    empty: Buffer.alloc(0),
  };

  it('get and getMany give back exactly the bytes put, and the content type', async () => {
    for (const [key, bytes] of Object.entries(blobs)) await storage.put(`t/${key}`, bytes, `type/${key.length}`);
    for (const [key, bytes] of Object.entries(blobs)) {
      const got = await storage.get(`t/${key}`);
      expect(got).not.toBeNull();
      expect(got!.contentType).toBe(`type/${key.length}`);
      expect(got!.bytes.equals(bytes)).toBe(true);
    }
    const keys = Object.keys(blobs).map((k) => `t/${k}`);
    const many = await storage.getMany([...keys, 't/absent', keys[0]]);
    expect([...many.keys()].sort()).toEqual([...keys].sort());
    for (const [key, bytes] of Object.entries(blobs)) expect(many.get(`t/${key}`)!.equals(bytes)).toBe(true);
  });

  it('a key not stored: get answers null, getMany leaves it out; no keys reads nothing', async () => {
    expect(await storage.get('t/never')).toBeNull();
    expect((await storage.getMany(['t/never'])).size).toBe(0);
    expect((await storage.getMany([])).size).toBe(0);
  });

  it('the same bytes as the text protocol reads (hex decoded by the driver)', async () => {
    const rows: { data: Buffer }[] = await app.ds.query(`SELECT data FROM blob_objects WHERE key = $1`, ['t/large']);
    expect((await storage.get('t/large'))!.bytes.equals(rows[0].data)).toBe(true);
  });

  it('NULL fields, and a COPY that fails rejects with the database error and leaves the pool usable', async () => {
    expect((await copyOutBinary(pool, `SELECT NULL::bytea, 'x'::text`)).map((r) => r.map((f) => f?.toString()))).toEqual([[undefined, 'x']]);
    await expect(copyOutBinary(pool, `SELECT 1 / 0`)).rejects.toMatchObject({ code: '22012' });
    await expect(copyOutBinary(pool, `SELECT * FROM no_such_table`)).rejects.toMatchObject({ code: '42P01' });
    // Every connection of the pool still answers (the failed ones went back in a usable state).
    const clients = await Promise.all(Array.from({ length: 3 }, () => pool.connect()));
    for (const c of clients) expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    clients.forEach((c) => c.release());
    expect((await storage.get('t/not-utf8'))!.bytes.equals(blobs['not-utf8'])).toBe(true);
  });

  it('literals: quotes doubled, NUL refused; a truncated or foreign stream is refused', () => {
    expect(quoteLiteral("it's")).toBe("'it''s'");
    expect(() => quoteLiteral('a\0b')).toThrow();
    expect(() => parseBinaryCopy(Buffer.from('not copy data at all'))).toThrow();
    const header = Buffer.concat([Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'), Buffer.alloc(8)]);
    const row = Buffer.from([0, 1, 0, 0, 0, 10, 1, 2]); // one field of 10 bytes, 2 present
    expect(() => parseBinaryCopy(Buffer.concat([header, row]))).toThrow(/cut short/);
  });
});
