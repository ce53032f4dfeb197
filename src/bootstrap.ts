import 'reflect-metadata';
import { DataSource } from 'typeorm';
import path from 'node:path';
import { AppConfig } from './platform/config';
import { startEmbeddedPostgres } from './platform/embedded-postgres';
import { logger } from './platform/logging';
import { dataSourceOptions } from '../ormconfig';
import { migrateJobQueue } from './platform/jobs';

/** Our migrations, then the job queue's own schema (graphile-worker manages its versions itself). */
export async function migrateAll(ds: DataSource, url: string): Promise<void> {
  await ds.runMigrations({ transaction: 'each' });
  await migrateJobQueue(url);
}

export interface Database {
  ds: DataSource;
  embedded: boolean;
  close(): Promise<void>;
}

/** DATABASE_URL when set; otherwise a real Postgres from the embedded-postgres package under DATA_DIR. */
export async function openDatabase(config: AppConfig, options: { migrate: boolean }): Promise<Database> {
  let url = config.DATABASE_URL;
  let stopEmbedded: (() => Promise<void>) | null = null;
  if (!url) {
    const embedded = await startEmbeddedPostgres(path.join(config.DATA_DIR, 'postgres'), config.EMBEDDED_PG_PORT);
    url = embedded.url;
    stopEmbedded = embedded.stop;
    logger.info('using embedded Postgres', { port: config.EMBEDDED_PG_PORT, dataDir: path.join(config.DATA_DIR, 'postgres') });
  }
  const ds = new DataSource(dataSourceOptions(url));
  await ds.initialize();
  if (options.migrate) await migrateAll(ds, url);
  return {
    ds,
    embedded: stopEmbedded !== null,
    close: async () => {
      await ds.destroy();
      if (stopEmbedded) await stopEmbedded();
    },
  };
}
