import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Images imported by URL are fetched by a run (IMAGE_FETCH): the URL is kept on the image until
 * its bytes arrive. ADD VALUE runs inside a transaction on Postgres 12 and later (the new value is
 * only unusable in that same transaction, and this migration does not use it).
 */
export class ImageFetch1764150000300 implements MigrationInterface {
  name = 'ImageFetch1764150000300';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TYPE "run_kind" ADD VALUE IF NOT EXISTS 'IMAGE_FETCH'`);
    await q.query(`ALTER TABLE "images" ADD "source_url" text`);
  }

  /** Postgres cannot drop an enum value: IMAGE_FETCH stays in run_kind, unused (harmless to the previous code). */
  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "images" DROP COLUMN "source_url"`);
  }
}
