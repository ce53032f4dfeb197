import 'reflect-metadata';
import { DataSource } from 'typeorm';
import path from 'node:path';
import { AppConfig } from '../platform/config';
import { EmbeddedPostgresRole, startEmbeddedPostgres } from '../platform/embedded-postgres';
import { logger } from '../platform/logging';
import { dataSourceOptions } from '../../ormconfig';
import { migrateJobQueue } from '../platform/jobs';

/** Our migrations, then the job queue's own schema (graphile-worker manages its versions itself). */
export async function migrateAll(ds: DataSource, url: string): Promise<void> {
  await ds.runMigrations({ transaction: 'each' });
  await migrateJobQueue(url);
}

export interface Database {
  ds: DataSource;
  embedded: boolean;
  /** Started, adopted or shared when the database is the embedded one; null with DATABASE_URL. */
  embeddedRole: EmbeddedPostgresRole | null;
  /** The connection URL, for the start banner when it is the embedded server (other processes can use it). */
  url: string;
  close(): Promise<void>;
}

/** DATABASE_URL when set; otherwise a real Postgres from the embedded-postgres package under DATA_DIR. */
export async function openDatabase(config: AppConfig, options: { migrate: boolean }): Promise<Database> {
  let url = config.DATABASE_URL;
  let stopEmbedded: (() => Promise<void>) | null = null;
  let embeddedRole: EmbeddedPostgresRole | null = null;
  if (!url) {
    const embedded = await startEmbeddedPostgres(path.join(config.DATA_DIR, 'postgres'), config.EMBEDDED_PG_PORT);
    url = embedded.url;
    stopEmbedded = embedded.stop;
    embeddedRole = embedded.role;
    logger.info('using embedded Postgres', { port: config.EMBEDDED_PG_PORT, dataDir: path.join(config.DATA_DIR, 'postgres'), role: embedded.role });
  }
  const ds = new DataSource(dataSourceOptions(url));
  try {
    await ds.initialize();
    if (options.migrate) await migrateAll(ds, url);
  } catch (error) {
    // A start that fails here must not leave behind the Postgres it started.
    await ds.destroy().catch(() => undefined);
    await stopEmbedded?.().catch(() => undefined);
    throw error;
  }
  return {
    ds,
    embedded: stopEmbedded !== null,
    embeddedRole,
    url,
    close: async () => {
      await ds.destroy();
      if (stopEmbedded) await stopEmbedded();
    },
  };
}
