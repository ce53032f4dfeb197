import crypto from 'node:crypto';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { dataSourceOptions } from '../../ormconfig';

async function withDatabase<T>(work: (ds: DataSource) => Promise<T>): Promise<T> {
  const name = `bmv_migrations_${crypto.randomBytes(5).toString('hex')}`;
  const admin = new Client({ connectionString: process.env.DATABASE_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const url = new URL(process.env.DATABASE_URL!);
  url.pathname = `/${name}`;
  const ds = new DataSource(dataSourceOptions(url.toString()));
  await ds.initialize();
  try {
    return await work(ds);
  } finally {
    await ds.destroy();
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  }
}

const tables = async (ds: DataSource) =>
  (await ds.query(`SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name`)).map((r: { table_name: string }) => r.table_name);

describe('migrations', () => {
  it('leave the database exactly as the entities describe it, apart from the hand-written foreign keys', async () => {
    await withDatabase(async (ds) => {
      await ds.runMigrations();
      const pending = (await ds.driver.createSchemaBuilder().log()).upQueries.map((q) => q.query);
      // What entity decorators cannot express lives only in the migration (see README, Migrations).
      const unexpected = pending.filter((sql) => !/DROP CONSTRAINT "fk_\w+"/.test(sql));
      expect(unexpected).toEqual([]);
    });
  });

  it('can be reverted completely and applied again', async () => {
    await withDatabase(async (ds) => {
      await ds.runMigrations();
      const applied = await tables(ds);
      expect(applied).toEqual(expect.arrayContaining(['images', 'candidates', 'preferences', 'scores', 'datasets', 'runs', 'blob_objects', 'rate_limits']));
      for (let i = 0; i < ds.migrations.length; i++) await ds.undoLastMigration();
      expect(await tables(ds)).toEqual(['typeorm_migrations']);
      await ds.runMigrations();
      expect(await tables(ds)).toEqual(applied);
    });
  });
});
