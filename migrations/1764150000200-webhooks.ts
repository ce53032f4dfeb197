import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Webhooks: endpoints, the outbox of deliveries (one per event and endpoint) and the log of every
 * attempt. The project foreign keys are hand-written (see README, Migrations).
 */
export class Webhooks1764150000200 implements MigrationInterface {
  name = 'Webhooks1764150000200';

  async up(q: QueryRunner): Promise<void> {
    await q.query(
      `CREATE TABLE "webhook_endpoints" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "created_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(), "project_id" uuid NOT NULL, "url" text NOT NULL, "description" text, "events" text array NOT NULL, "enabled" boolean NOT NULL DEFAULT true, "disabled_reason" text, "secret" text NOT NULL, "previous_secret" text, "previous_secret_expires_at" TIMESTAMP WITH TIME ZONE, "consecutive_failed_deliveries" integer NOT NULL DEFAULT '0', CONSTRAINT "PK_054c4cfb95223732f5939d2d546" PRIMARY KEY ("id"))`,
    );
    await q.query(`CREATE INDEX "IDX_db452522be384ed567252e3337" ON "webhook_endpoints" ("project_id", "created_at", "id")`);
    await q.query(
      `CREATE TABLE "webhook_deliveries" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "created_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(), "project_id" uuid NOT NULL, "endpoint_id" uuid NOT NULL, "event_type" text NOT NULL, "event_key" text NOT NULL, "payload" jsonb NOT NULL, "status" text NOT NULL DEFAULT 'PENDING', "attempt_count" integer NOT NULL DEFAULT '0', "next_attempt_at" TIMESTAMP WITH TIME ZONE, CONSTRAINT "PK_535dd409947fb6d8fc6dfc0112a" PRIMARY KEY ("id"))`,
    );
    await q.query(`CREATE INDEX "IDX_70794d9bd520fb3cfb3153bf24" ON "webhook_deliveries" ("project_id", "endpoint_id", "created_at", "id")`);
    await q.query(`CREATE UNIQUE INDEX "IDX_43cb0ee2fc46d32b1db892a621" ON "webhook_deliveries" ("endpoint_id", "event_key")`);
    await q.query(
      `CREATE TABLE "webhook_attempts" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "created_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(), "project_id" uuid NOT NULL, "delivery_id" uuid NOT NULL, "attempt_number" integer NOT NULL, "manual" boolean NOT NULL DEFAULT false, "outcome" text NOT NULL, "status_code" integer, "latency_ms" integer NOT NULL, "response_excerpt" text, "error" text, "next_attempt_at" TIMESTAMP WITH TIME ZONE, CONSTRAINT "PK_2de7e7887ad97de459adab62638" PRIMARY KEY ("id"))`,
    );
    await q.query(`CREATE UNIQUE INDEX "IDX_00d7b4c3f7d9306a46ecbc30fd" ON "webhook_attempts" ("delivery_id", "attempt_number")`);
    await q.query(`CREATE INDEX "IDX_7e3a59ac842cf2cd9d0a4bf06a" ON "webhook_attempts" ("project_id", "delivery_id", "created_at", "id")`);
    await q.query(`ALTER TABLE "webhook_deliveries" ADD CONSTRAINT "FK_0b882c26a9b91c26e6e86b4867c" FOREIGN KEY ("endpoint_id") REFERENCES "webhook_endpoints"("id") ON DELETE CASCADE ON UPDATE NO ACTION`);
    await q.query(`ALTER TABLE "webhook_attempts" ADD CONSTRAINT "FK_0d56d91d61b827bb2079c256538" FOREIGN KEY ("delivery_id") REFERENCES "webhook_deliveries"("id") ON DELETE CASCADE ON UPDATE NO ACTION`);
    for (const table of ['webhook_endpoints', 'webhook_deliveries', 'webhook_attempts']) {
      await q.query(`ALTER TABLE "${table}" ADD CONSTRAINT "fk_${table}_project" FOREIGN KEY ("project_id") REFERENCES "projects"("id") ON DELETE CASCADE ON UPDATE NO ACTION`);
    }
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "webhook_attempts"`);
    await q.query(`DROP TABLE "webhook_deliveries"`);
    await q.query(`DROP TABLE "webhook_endpoints"`);
  }
}
