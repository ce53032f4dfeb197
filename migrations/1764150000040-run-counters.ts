import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Run counters that add up: items skipped because another run finished them, counts by outcome,
 * and model calls abandoned by a worker that stopped (with the calls still in flight, so that a
 * crash cannot lose the count).
 */
export class RunCounters1764150000040 implements MigrationInterface {
  name = 'RunCounters1764150000040';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "runs" ADD "skipped" integer NOT NULL DEFAULT '0'`);
    await q.query(`ALTER TABLE "runs" ADD "counts_by_status" jsonb NOT NULL DEFAULT '{}'`);
    await q.query(`ALTER TABLE "runs" ADD "abandoned_attempts" integer NOT NULL DEFAULT '0'`);
    await q.query(`ALTER TABLE "runs" ADD "abandoned_cost_usd" numeric(12,6) NOT NULL DEFAULT '0'`);
    await q.query(`ALTER TABLE "runs" ADD "in_flight_calls" integer NOT NULL DEFAULT '0'`);
    await q.query(`ALTER TABLE "runs" ADD "in_flight_cost_usd" numeric(12,6) NOT NULL DEFAULT '0'`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "runs" DROP COLUMN "in_flight_cost_usd"`);
    await q.query(`ALTER TABLE "runs" DROP COLUMN "in_flight_calls"`);
    await q.query(`ALTER TABLE "runs" DROP COLUMN "abandoned_cost_usd"`);
    await q.query(`ALTER TABLE "runs" DROP COLUMN "abandoned_attempts"`);
    await q.query(`ALTER TABLE "runs" DROP COLUMN "counts_by_status"`);
    await q.query(`ALTER TABLE "runs" DROP COLUMN "skipped"`);
  }
}
