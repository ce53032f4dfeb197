import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Evaluation (issue 11): EVALUATION runs measure selectors and the model judge against held-out
 * clinician pairs. `selector_evaluations` holds one row per (run, selector or judge);
 * `evaluation_item_scores` caches a selector's score of one judged answer (image + text hash), so a
 * re-evaluation only runs the model on answers it has not seen. Both are owned by the evaluation
 * module. ADD VALUE runs inside the migration's transaction on Postgres 12+ (the value is not used
 * in that same transaction). Project and run foreign keys are hand-written (see README, Migrations).
 */
export class Evaluation1764150000500 implements MigrationInterface {
  name = 'Evaluation1764150000500';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TYPE "run_kind" ADD VALUE IF NOT EXISTS 'EVALUATION'`);
    await q.query(
      `CREATE TABLE "selector_evaluations" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "created_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(), "project_id" uuid NOT NULL, "run_id" uuid NOT NULL, "subject" text NOT NULL, "subject_key" text NOT NULL, "selector_model_id" uuid, "judge_model" text, "pairs" integer NOT NULL, "pairs_without_score" integer NOT NULL, "ties" integer NOT NULL, "bootstrap_units" integer NOT NULL, "alignment_rate_value" double precision, "auc_value" double precision, "mean_rank_value" double precision, "map_value" double precision, "report" jsonb NOT NULL, CONSTRAINT "PK_6100f897de2425d1b1bbf379cdd" PRIMARY KEY ("id"))`,
    );
    await q.query(`CREATE INDEX "IDX_39ff6c8a69aba76f1b9863d4ea" ON "selector_evaluations" ("project_id", "selector_model_id", "created_at", "id")`);
    await q.query(`CREATE UNIQUE INDEX "IDX_f2499f11264756a908be0f2867" ON "selector_evaluations" ("run_id", "subject_key")`);
    await q.query(
      `CREATE TABLE "evaluation_item_scores" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "created_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(), "project_id" uuid NOT NULL, "selector_model_id" uuid NOT NULL, "image_id" uuid NOT NULL, "text_hash" character(64) NOT NULL, "value" double precision NOT NULL, CONSTRAINT "PK_ca6f83e4ca0db89add43f08addc" PRIMARY KEY ("id"))`,
    );
    await q.query(`CREATE UNIQUE INDEX "IDX_4a1c2860419993c0bf79157053" ON "evaluation_item_scores" ("project_id", "selector_model_id", "image_id", "text_hash")`);
    await q.query(`ALTER TABLE "selector_evaluations" ADD CONSTRAINT "FK_80c8f777903f8a1b379156b1106" FOREIGN KEY ("selector_model_id") REFERENCES "selector_models"("id") ON DELETE CASCADE ON UPDATE NO ACTION`);
    await q.query(`ALTER TABLE "evaluation_item_scores" ADD CONSTRAINT "FK_5a353fd97af2ccc248ea51c9629" FOREIGN KEY ("selector_model_id") REFERENCES "selector_models"("id") ON DELETE CASCADE ON UPDATE NO ACTION`);
    await q.query(`ALTER TABLE "selector_evaluations" ADD CONSTRAINT "fk_selector_evaluations_run" FOREIGN KEY ("run_id") REFERENCES "runs"("id") ON DELETE CASCADE ON UPDATE NO ACTION`);
    for (const table of ['selector_evaluations', 'evaluation_item_scores']) {
      await q.query(`ALTER TABLE "${table}" ADD CONSTRAINT "fk_${table}_project" FOREIGN KEY ("project_id") REFERENCES "projects"("id") ON DELETE CASCADE ON UPDATE NO ACTION`);
    }
  }

  /** Postgres cannot drop an enum value: EVALUATION stays in run_kind, unused (harmless to the previous code). */
  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "evaluation_item_scores"`);
    await q.query(`DROP TABLE "selector_evaluations"`);
  }
}
