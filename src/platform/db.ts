import { DataSource, DataSourceOptions, Logger } from 'typeorm';
import { logger } from './logging';

/**
 * Counts every SQL statement the process sends. Tests read it to prove that nested fields are
 * batched (no N+1); it costs one integer increment per query.
 */
export class StatementCounter implements Logger {
  static count = 0;
  /** When set, receives every statement with its parameters (benchmarks replay them as a reference). */
  static capture: ((query: string, parameters: unknown[]) => void) | null = null;
  static reset(): void {
    StatementCounter.count = 0;
  }
  logQuery(query: string, parameters?: unknown[]): void {
    StatementCounter.count++;
    StatementCounter.capture?.(query, parameters ?? []);
    if (process.env.LOG_SQL === 'true') logger.debug('sql', { query });
  }
  logQueryError(error: string | Error, query: string): void {
    logger.debug('sql error', { error: String(error), query });
  }
  logQuerySlow(time: number, query: string): void {
    logger.warn('slow query', { time, query: query.slice(0, 500) });
  }
  logSchemaBuild(): void {}
  logMigration(message: string): void {
    logger.info(message);
  }
  log(level: 'log' | 'info' | 'warn', message: unknown): void {
    if (level === 'warn') logger.warn(String(message));
  }
}

export interface DataSourceParts {
  entities: NonNullable<DataSourceOptions['entities']>;
  migrations: NonNullable<DataSourceOptions['migrations']>;
}

export function postgresOptions(url: string, parts: DataSourceParts): DataSourceOptions {
  return {
    type: 'postgres',
    url,
    entities: parts.entities,
    migrations: parts.migrations,
    synchronize: false,
    uuidExtension: 'pgcrypto',
    migrationsRun: false,
    migrationsTableName: 'typeorm_migrations',
    logging: ['query', 'error', 'warn', 'migration'],
    logger: new StatementCounter(),
    maxQueryExecutionTime: 2000,
    extra: { max: Number(process.env.DB_POOL_SIZE ?? 10) },
  };
}

/** True when every migration known to the code has been applied. */
/** The URL the DataSource was opened with, for the connections that live outside its pool. */
export function connectionString(ds: DataSource): string {
  return (ds.options as { url?: string }).url!;
}

export async function migrationsApplied(ds: DataSource): Promise<boolean> {
  return !(await ds.showMigrations());
}
