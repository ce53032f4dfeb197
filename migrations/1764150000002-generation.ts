import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Generation, rating and clustering runs: prompt templates, per-item run failures, cached text
 * embeddings, per-candidate cost, one model rating per (run, candidate, round, answer), the targets
 * frozen at a run's creation, and two tables the workers share: request pacing (GCRA) and worker
 * heartbeats.
 */
export class Generation1764150000002 implements MigrationInterface {
  name = 'Generation1764150000002';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE TABLE "run_failures" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "created_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(), "project_id" uuid NOT NULL, "run_id" uuid NOT NULL, "item_key" text NOT NULL, "reason" text NOT NULL, "raw_output" text, "attempts" integer NOT NULL DEFAULT '1', CONSTRAINT "PK_742021f0af2243cc216c37422d0" PRIMARY KEY ("id"))`);
    await q.query(`CREATE INDEX "IDX_82e3a5f204662edee698d9d9f8" ON "run_failures" ("project_id", "run_id", "created_at", "id")`);
    await q.query(`CREATE UNIQUE INDEX "IDX_26a93a759eb942c2057bbe48fd" ON "run_failures" ("run_id", "item_key")`);
    await q.query(`ALTER TABLE "run_failures" ADD CONSTRAINT "FK_00a4bf4d7ddd596daaf91a6eb1c" FOREIGN KEY ("run_id") REFERENCES "runs"("id") ON DELETE CASCADE ON UPDATE NO ACTION`);
    await q.query(`ALTER TABLE "run_failures" ADD CONSTRAINT "fk_run_failures_project" FOREIGN KEY ("project_id") REFERENCES "projects"("id") ON DELETE CASCADE`);

    await q.query(`CREATE TYPE "public"."prompt_kind" AS ENUM('GENERATION', 'RATING')`);
    await q.query(`CREATE TABLE "prompt_templates" ("version" text NOT NULL, "kind" "public"."prompt_kind" NOT NULL, "system" text NOT NULL, "instructions" text NOT NULL, "content_hash" character(64) NOT NULL, "created_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_9b2431de0eaabe7ddca648a0ab9" PRIMARY KEY ("version"))`);

    await q.query(`CREATE TABLE "image_embeddings" ("project_id" uuid NOT NULL, "model" text NOT NULL, "text_hash" character(64) NOT NULL, "vector" real array NOT NULL, "created_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_b102df37a64859ec06f4e76e0cf" PRIMARY KEY ("project_id", "model", "text_hash"))`);
    await q.query(`ALTER TABLE "image_embeddings" ADD CONSTRAINT "fk_image_embeddings_project" FOREIGN KEY ("project_id") REFERENCES "projects"("id") ON DELETE CASCADE`);

    await q.query(`ALTER TABLE "candidates" ADD "cost_usd" numeric(12,6) NOT NULL DEFAULT '0'`);
    await q.query(`CREATE UNIQUE INDEX "uq_preferences_run_item" ON "preferences" ("run_id", "candidate_id", "round_index", "answer_index") WHERE run_id IS NOT NULL`);

    // Shared by every worker process: not entities, read and written with plain SQL.
    await q.query(`CREATE TABLE "llm_pacing" ("key" text PRIMARY KEY, "tat" timestamptz NOT NULL, "step" interval NOT NULL)`);
    await q.query(`CREATE TABLE "worker_heartbeats" ("worker_id" text PRIMARY KEY, "process" text NOT NULL, "beat_at" timestamptz NOT NULL DEFAULT now())`);
    // What a run works on (images or candidates), frozen when the run is created.
    await q.query(`CREATE TABLE "run_targets" ("run_id" uuid NOT NULL REFERENCES "runs"("id") ON DELETE CASCADE, "target_id" uuid NOT NULL, PRIMARY KEY ("run_id", "target_id"))`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "run_targets"`);
    await q.query(`DROP TABLE "worker_heartbeats"`);
    await q.query(`DROP TABLE "llm_pacing"`);
    await q.query(`DROP INDEX "public"."uq_preferences_run_item"`);
    await q.query(`ALTER TABLE "candidates" DROP COLUMN "cost_usd"`);
    await q.query(`DROP TABLE "image_embeddings"`);
    await q.query(`DROP TABLE "prompt_templates"`);
    await q.query(`DROP TYPE "public"."prompt_kind"`);
    await q.query(`DROP TABLE "run_failures"`);
  }
}
