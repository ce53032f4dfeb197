import { DataSource } from 'typeorm';
import { RateLimiterPostgres, RateLimiterRes } from 'rate-limiter-flexible';
import { RateLimitedError } from './errors';

/**
 * Requests per minute per API key, counted in Postgres so that every api process shares one
 * budget. The table comes from a migration; expired rows are reused by the next window's upsert.
 */
export class RequestRateLimiter {
  private readonly limiter: RateLimiterPostgres | null;

  constructor(ds: DataSource, perMinute: number) {
    const pool = (ds.driver as unknown as { master: unknown }).master;
    this.limiter =
      perMinute > 0
        ? new RateLimiterPostgres({ storeClient: pool, storeType: 'pool', tableName: 'rate_limits', tableCreated: true, clearExpiredByTimeout: false, points: perMinute, duration: 60, keyPrefix: 'key' })
        : null;
  }

  async consume(key: string): Promise<void> {
    if (!this.limiter) return;
    try {
      await this.limiter.consume(key);
    } catch (rejection) {
      if (rejection instanceof RateLimiterRes) throw new RateLimitedError(Math.max(1, Math.ceil(rejection.msBeforeNext / 1000)));
      throw rejection;
    }
  }
}
