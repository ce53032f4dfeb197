import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Selection: a selector's stored files, ONNX signature and dry-run score; where a run's time went;
 * who created a dataset and why. Scores are already unique per (candidate, selector model).
 */
export class Selection1764150000003 implements MigrationInterface {
  name = 'Selection1764150000003';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "selector_models" ADD "description" text`);
    await q.query(`ALTER TABLE "selector_models" ADD "files" jsonb NOT NULL DEFAULT '{}'`);
    await q.query(`ALTER TABLE "selector_models" ADD "signature" jsonb NOT NULL DEFAULT '{}'`);
    await q.query(`ALTER TABLE "selector_models" ADD "dry_run_score" double precision`);
    await q.query(`ALTER TABLE "selector_models" ADD "created_by_id" uuid`);
    await q.query(`ALTER TABLE "runs" ADD "metrics" jsonb`);
    await q.query(`ALTER TABLE "datasets" ADD "description" text`);
    await q.query(`ALTER TABLE "datasets" ADD "created_by_id" uuid`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "datasets" DROP COLUMN "created_by_id"`);
    await q.query(`ALTER TABLE "datasets" DROP COLUMN "description"`);
    await q.query(`ALTER TABLE "runs" DROP COLUMN "metrics"`);
    await q.query(`ALTER TABLE "selector_models" DROP COLUMN "created_by_id"`);
    await q.query(`ALTER TABLE "selector_models" DROP COLUMN "dry_run_score"`);
    await q.query(`ALTER TABLE "selector_models" DROP COLUMN "signature"`);
    await q.query(`ALTER TABLE "selector_models" DROP COLUMN "files"`);
    await q.query(`ALTER TABLE "selector_models" DROP COLUMN "description"`);
  }
}
