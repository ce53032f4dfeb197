import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Clinician annotation campaigns (issue 12): campaigns, their frozen items, the `overlap` lease slots
 * of each item, skips, versioned submissions and promotions to demonstrations. Preferences written by
 * a campaign carry its id and the submission that wrote them (agreement reads `preferences WHERE
 * campaign_id = $1`). The project and cross-module foreign keys are hand-written (see README, Migrations).
 */
export class AnnotationCampaigns1764150000600 implements MigrationInterface {
  name = 'AnnotationCampaigns1764150000600';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE TYPE "public"."annotation_task_kind" AS ENUM('ACCEPTANCE', 'PAIRWISE', 'RATING')`);
    await q.query(`CREATE TYPE "public"."annotation_routing" AS ENUM('RANDOM', 'ORDERED', 'VALUE')`);
    await q.query(
      `CREATE TABLE "annotation_campaigns" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "created_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(), "project_id" uuid NOT NULL, "name" text NOT NULL, "guidelines" text, "task_kind" "public"."annotation_task_kind" NOT NULL, "overlap" integer NOT NULL, "annotator_ids" uuid array, "lease_seconds" integer NOT NULL, "blind" boolean NOT NULL, "routing" "public"."annotation_routing" NOT NULL, "item_source" jsonb NOT NULL, "item_count" integer NOT NULL, "created_by_id" uuid NOT NULL, CONSTRAINT "PK_0fdb27cf5c2a1dd7271f52c4436" PRIMARY KEY ("id")); COMMENT ON COLUMN "annotation_campaigns"."annotator_ids" IS 'user ids allowed to annotate; null: every CLINICIAN member'`,
    );
    await q.query(`CREATE INDEX "IDX_5cf3c5ec178e4462c4d4bf7eb9" ON "annotation_campaigns"  ("project_id", "created_at", "id") `);
    await q.query(
      `CREATE TABLE "annotation_items" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "created_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(), "project_id" uuid NOT NULL, "campaign_id" uuid NOT NULL, "candidate_id" uuid NOT NULL, "other_candidate_id" uuid, "round_index" integer, "ordinal" integer NOT NULL, "random_key" double precision NOT NULL, "priority" double precision NOT NULL DEFAULT '0', CONSTRAINT "PK_5498b7ccdea5e2d00dd3bafb761" PRIMARY KEY ("id")); COMMENT ON COLUMN "annotation_items"."other_candidate_id" IS 'PAIRWISE between two candidates: candidate B'; COMMENT ON COLUMN "annotation_items"."random_key" IS 'RANDOM routing: a hash of the campaign and item, stable across calls and processes'; COMMENT ON COLUMN "annotation_items"."priority" IS 'VALUE routing: highest first (routing-value.ts)'`,
    );
    await q.query(`CREATE INDEX "IDX_ffa46bed052a6e0a2df4f838a9" ON "annotation_items"  ("project_id", "candidate_id") `);
    await q.query(`CREATE UNIQUE INDEX "IDX_dc2a9025a7d64ae66dd8f9ccf0" ON "annotation_items"  ("campaign_id", "ordinal") `);
    await q.query(`CREATE TYPE "public"."annotation_slot_state" AS ENUM('FREE', 'LEASED', 'SUBMITTED')`);
    await q.query(
      `CREATE TABLE "annotation_leases" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "created_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(), "project_id" uuid NOT NULL, "campaign_id" uuid NOT NULL, "item_id" uuid NOT NULL, "slot" integer NOT NULL, "state" "public"."annotation_slot_state" NOT NULL DEFAULT 'FREE', "annotator_id" uuid, "leased_at" TIMESTAMP(3) WITH TIME ZONE, "expires_at" TIMESTAMP(3) WITH TIME ZONE, "submitted_at" TIMESTAMP(3) WITH TIME ZONE, CONSTRAINT "PK_86af503a494519793ca1ebb72c9" PRIMARY KEY ("id")); COMMENT ON COLUMN "annotation_leases"."annotator_id" IS 'the clinician holding (LEASED) or having filled (SUBMITTED) the slot'`,
    );
    await q.query(`CREATE INDEX "IDX_2b02ad6bb5e2caf03c60a83960" ON "annotation_leases"  ("campaign_id", "state") `);
    await q.query(`CREATE INDEX "IDX_1a8c678bc5033d3e1fcf52d9b2" ON "annotation_leases"  ("campaign_id", "annotator_id", "state") `);
    await q.query(`CREATE UNIQUE INDEX "uq_annotation_leases_item_annotator" ON "annotation_leases"  ("item_id", "annotator_id") WHERE annotator_id IS NOT NULL`);
    await q.query(`CREATE UNIQUE INDEX "IDX_36b979e5f2d7dc96df0d009d07" ON "annotation_leases"  ("item_id", "slot") `);
    await q.query(
      `CREATE TABLE "annotation_skips" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "created_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(), "project_id" uuid NOT NULL, "campaign_id" uuid NOT NULL, "item_id" uuid NOT NULL, "annotator_id" uuid NOT NULL, CONSTRAINT "PK_e1676190ff74931b32810ab2203" PRIMARY KEY ("id"))`,
    );
    await q.query(`CREATE INDEX "IDX_5da442370c0e837e692075eb17" ON "annotation_skips"  ("campaign_id", "annotator_id") `);
    await q.query(`CREATE UNIQUE INDEX "IDX_232f50fcc6d4c716989d22759b" ON "annotation_skips"  ("item_id", "annotator_id") `);
    await q.query(
      `CREATE TABLE "annotation_submissions" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "created_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(), "project_id" uuid NOT NULL, "campaign_id" uuid NOT NULL, "item_id" uuid NOT NULL, "annotator_id" uuid NOT NULL, "version" integer NOT NULL, "comment" text, "acceptance" jsonb, "choice" "public"."pairwise_choice", "round_index" integer, "ratings" jsonb, CONSTRAINT "PK_65534ba4cc21270b63fe02c74ad" PRIMARY KEY ("id"))`,
    );
    await q.query(`CREATE INDEX "IDX_ccdf83feb0111d0a28edee8b02" ON "annotation_submissions"  ("campaign_id", "annotator_id") `);
    await q.query(`CREATE UNIQUE INDEX "IDX_4e1824697affd780d09bd98b21" ON "annotation_submissions"  ("item_id", "annotator_id", "version") `);
    await q.query(
      `CREATE TABLE "annotation_promotions" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "created_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(), "project_id" uuid NOT NULL, "campaign_id" uuid NOT NULL, "item_id" uuid NOT NULL, "demonstration_id" uuid NOT NULL, "submission_ids" uuid array NOT NULL, "preference_ids" uuid array NOT NULL, "promoted_by_id" uuid NOT NULL, CONSTRAINT "PK_08ea51bc7476ea6b3e7f406ee1b" PRIMARY KEY ("id"))`,
    );
    await q.query(`CREATE INDEX "IDX_ba722c39a58972228b760d0238" ON "annotation_promotions"  ("project_id", "demonstration_id") `);
    await q.query(`CREATE UNIQUE INDEX "IDX_74e97bba492937fb61a56cf162" ON "annotation_promotions"  ("item_id") `);
    await q.query(`ALTER TABLE "preferences" ADD "campaign_id" uuid`);
    await q.query(`COMMENT ON COLUMN "preferences"."campaign_id" IS 'the annotation campaign this clinician judgement was made in'`);
    await q.query(`ALTER TABLE "preferences" ADD "annotation_submission_id" uuid`);
    await q.query(`COMMENT ON COLUMN "preferences"."annotation_submission_id" IS 'the annotation submission (version) that wrote this row'`);
    await q.query(`CREATE INDEX "idx_preferences_campaign" ON "preferences"  ("campaign_id", "candidate_id") WHERE campaign_id IS NOT NULL`);
    await q.query(`ALTER TABLE "annotation_items" ADD CONSTRAINT "FK_f3ac78edffbd4b5694a91b79922" FOREIGN KEY ("campaign_id") REFERENCES "annotation_campaigns"("id") ON DELETE CASCADE ON UPDATE NO ACTION`);
    await q.query(`ALTER TABLE "annotation_items" ADD CONSTRAINT "FK_72ffcbb006b204f81520de2a788" FOREIGN KEY ("candidate_id") REFERENCES "candidates"("id") ON DELETE CASCADE ON UPDATE NO ACTION`);
    await q.query(`ALTER TABLE "annotation_leases" ADD CONSTRAINT "FK_dfba0f3c103bf26e8f9c352cd18" FOREIGN KEY ("item_id") REFERENCES "annotation_items"("id") ON DELETE CASCADE ON UPDATE NO ACTION`);
    await q.query(`ALTER TABLE "annotation_skips" ADD CONSTRAINT "FK_22f7a4acc1acea7a307157806bb" FOREIGN KEY ("item_id") REFERENCES "annotation_items"("id") ON DELETE CASCADE ON UPDATE NO ACTION`);
    await q.query(`ALTER TABLE "annotation_submissions" ADD CONSTRAINT "FK_75b4de04d87b9d93643cebe99f1" FOREIGN KEY ("item_id") REFERENCES "annotation_items"("id") ON DELETE CASCADE ON UPDATE NO ACTION`);
    // Hand-written: every table cascades with its project; the rest keep references honest across modules.
    for (const table of ['annotation_campaigns', 'annotation_items', 'annotation_leases', 'annotation_skips', 'annotation_submissions', 'annotation_promotions']) {
      await q.query(`ALTER TABLE "${table}" ADD CONSTRAINT "fk_${table}_project" FOREIGN KEY ("project_id") REFERENCES "projects"("id") ON DELETE CASCADE ON UPDATE NO ACTION`);
    }
    await q.query(`ALTER TABLE "annotation_items" ADD CONSTRAINT "fk_annotation_items_other_candidate" FOREIGN KEY ("other_candidate_id") REFERENCES "candidates"("id") ON DELETE CASCADE ON UPDATE NO ACTION`);
    await q.query(`ALTER TABLE "annotation_promotions" ADD CONSTRAINT "fk_annotation_promotions_demonstration" FOREIGN KEY ("demonstration_id") REFERENCES "demonstrations"("id") ON DELETE CASCADE ON UPDATE NO ACTION`);
    await q.query(`ALTER TABLE "preferences" ADD CONSTRAINT "fk_preferences_campaign" FOREIGN KEY ("campaign_id") REFERENCES "annotation_campaigns"("id") ON DELETE SET NULL ON UPDATE NO ACTION`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "preferences" DROP CONSTRAINT "fk_preferences_campaign"`);
    await q.query(`DROP INDEX "public"."idx_preferences_campaign"`);
    await q.query(`ALTER TABLE "preferences" DROP COLUMN "annotation_submission_id"`);
    await q.query(`ALTER TABLE "preferences" DROP COLUMN "campaign_id"`);
    await q.query(`DROP TABLE "annotation_promotions"`);
    await q.query(`DROP TABLE "annotation_submissions"`);
    await q.query(`DROP TABLE "annotation_skips"`);
    await q.query(`DROP TABLE "annotation_leases"`);
    await q.query(`DROP TYPE "public"."annotation_slot_state"`);
    await q.query(`DROP TABLE "annotation_items"`);
    await q.query(`DROP TABLE "annotation_campaigns"`);
    await q.query(`DROP TYPE "public"."annotation_routing"`);
    await q.query(`DROP TYPE "public"."annotation_task_kind"`);
  }
}
