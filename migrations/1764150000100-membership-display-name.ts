import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The name a project knows a member by. A user (one email) may belong to many projects; an owner
 * who adds an email sees the name they gave, whether or not the email exists elsewhere, so adding
 * a member reveals nothing about other projects.
 */
export class MembershipDisplayName1764150000100 implements MigrationInterface {
  name = 'MembershipDisplayName1764150000100';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "memberships" ADD "display_name" text`);
    await q.query(`UPDATE "memberships" m SET "display_name" = u."display_name" FROM "users" u WHERE u."id" = m."user_id"`);
    await q.query(`ALTER TABLE "memberships" ALTER COLUMN "display_name" SET NOT NULL`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "memberships" DROP COLUMN "display_name"`);
  }
}
