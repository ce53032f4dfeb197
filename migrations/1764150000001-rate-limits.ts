import { MigrationInterface, QueryRunner } from 'typeorm';

/** Request counters per API key, in the shape rate-limiter-flexible's Postgres store reads and writes. */
export class RateLimits1764150000001 implements MigrationInterface {
  name = 'RateLimits1764150000001';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE TABLE "rate_limits" ("key" varchar(255) PRIMARY KEY, "points" integer NOT NULL DEFAULT 0, "expire" bigint)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "rate_limits"`);
  }
}
