import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The whole schema of the foundation. Generated from the entities with `npm run migration:generate`,
 * then completed by hand with full-text and array indexes, blob storage and cross-module keys.
 */
export class Initial1764150000000 implements MigrationInterface {
  name = 'Initial1764150000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE EXTENSION IF NOT EXISTS "pgcrypto"`);
    await q.query(`CREATE TABLE "projects" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "created_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(), "name" text NOT NULL, "slug" text NOT NULL, CONSTRAINT "PK_6271df0a7aed1d6c0691ce6ac50" PRIMARY KEY ("id"))`);
    await q.query(`CREATE UNIQUE INDEX "IDX_96e045ab8b0271e5f5a91eae1e" ON "projects"  ("slug") `);
    await q.query(`CREATE TABLE "users" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "created_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(), "email" text NOT NULL, "display_name" text NOT NULL, CONSTRAINT "PK_a3ffb1c0c8416b9fc6f907b7433" PRIMARY KEY ("id")); COMMENT ON COLUMN "users"."email" IS 'stored lower-case'`);
    await q.query(`CREATE UNIQUE INDEX "IDX_97672ac88f789774dd47f7c8be" ON "users"  ("email") `);
    await q.query(`CREATE TYPE "public"."role" AS ENUM('VIEWER', 'CLINICIAN', 'CURATOR', 'OWNER')`);
    await q.query(`CREATE TABLE "memberships" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "created_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(), "project_id" uuid NOT NULL, "user_id" uuid NOT NULL, "role" "public"."role" NOT NULL, CONSTRAINT "PK_25d28bd932097a9e90495ede7b4" PRIMARY KEY ("id"))`);
    await q.query(`CREATE INDEX "IDX_7c1e2fdfed4f6838e0c05ae505" ON "memberships"  ("user_id") `);
    await q.query(`CREATE UNIQUE INDEX "IDX_246faae84ffe34c04db7c91ae5" ON "memberships"  ("project_id", "user_id") `);
    await q.query(`CREATE TABLE "api_keys" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "created_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(), "project_id" uuid NOT NULL, "user_id" uuid NOT NULL, "name" text NOT NULL, "prefix" text NOT NULL, "secret_hash" text NOT NULL, "last_used_at" TIMESTAMP(3) WITH TIME ZONE, "revoked_at" TIMESTAMP(3) WITH TIME ZONE, CONSTRAINT "PK_5c8a79801b44bd27b79228e1dad" PRIMARY KEY ("id"))`);
    await q.query(`CREATE UNIQUE INDEX "IDX_fef9aa4a1cf4f8c063ac5d75f2" ON "api_keys"  ("secret_hash") `);
    await q.query(`CREATE INDEX "IDX_140c95f5905a4d2a0144e41c8c" ON "api_keys"  ("project_id", "created_at") `);
    await q.query(`CREATE TYPE "public"."modality" AS ENUM('CHEST_XRAY', 'MRI', 'CT', 'HISTOLOGY', 'GROSS', 'OTHER')`);
    await q.query(`CREATE TYPE "public"."image_source" AS ENUM('UPLOAD', 'URL', 'IMPORT')`);
    await q.query(`CREATE TABLE "images" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "created_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(), "project_id" uuid NOT NULL, "pmid" text, "pair_id" text, "fig_label" text, "fig_id" text, "graphic_ref" text, "file_name" text, "caption" text NOT NULL DEFAULT '', "mentions" text array NOT NULL DEFAULT '{}', "modalities" "public"."modality" array NOT NULL DEFAULT '{}', "source" "public"."image_source" NOT NULL, "content_hash" character(64), "mime_type" text, "width" integer, "height" integer, "byte_size" integer, "cluster_id" integer, CONSTRAINT "PK_1fe148074c6a1a91b63cb9ee3c9" PRIMARY KEY ("id"))`);
    await q.query(`CREATE INDEX "IDX_4eeaf9e1e35877baf69b2106b5" ON "images"  ("project_id", "cluster_id") `);
    await q.query(`CREATE UNIQUE INDEX "IDX_c9211a01ad7938e798be6ccf61" ON "images"  ("project_id", "pair_id") WHERE pair_id IS NOT NULL`);
    await q.query(`CREATE UNIQUE INDEX "IDX_3a0bc76543106946e3cb220275" ON "images"  ("project_id", "content_hash") WHERE content_hash IS NOT NULL`);
    await q.query(`CREATE INDEX "IDX_d302c02a997fa849339d125488" ON "images"  ("project_id", "created_at", "id") `);
    await q.query(`CREATE TABLE "demonstrations" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "created_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(), "project_id" uuid NOT NULL, "image_id" uuid NOT NULL, "turns" jsonb NOT NULL, "conversation_hash" character(64) NOT NULL, "active" boolean NOT NULL DEFAULT true, "selected_by_id" uuid, "source_candidate_id" uuid, "external_id" text, CONSTRAINT "PK_8e057329c1868672f00cb6c73d5" PRIMARY KEY ("id")); COMMENT ON COLUMN "demonstrations"."conversation_hash" IS 'sha256 of the turns; re-importing the same conversation is a no-op'`);
    await q.query(`CREATE UNIQUE INDEX "IDX_b17fce5534488e38410f65525e" ON "demonstrations"  ("project_id", "image_id", "conversation_hash") `);
    await q.query(`CREATE INDEX "IDX_46eb796143c3cd553d6764d0b9" ON "demonstrations"  ("project_id", "active") `);
    await q.query(`CREATE INDEX "IDX_768a553653a97d3a95a1b1fd8a" ON "demonstrations"  ("project_id", "created_at", "id") `);
    await q.query(`CREATE TYPE "public"."candidate_status" AS ENUM('OK', 'PARSE_FAILED', 'REFUSED', 'FAILED')`);
    await q.query(`CREATE TYPE "public"."candidate_form" AS ENUM('SINGLE_ANSWER', 'TWO_ANSWERS')`);
    await q.query(`CREATE TABLE "candidates" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "created_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(), "project_id" uuid NOT NULL, "image_id" uuid NOT NULL, "run_id" uuid, "sample_index" integer NOT NULL DEFAULT '0', "status" "public"."candidate_status" NOT NULL, "form" "public"."candidate_form" NOT NULL DEFAULT 'SINGLE_ANSWER', "raw_output" text, "rounds" jsonb NOT NULL DEFAULT '[]', "failure_reason" text, "model" text, "prompt_template_version" text, "demonstration_ids" uuid array NOT NULL DEFAULT '{}', "prompt_tokens" integer NOT NULL DEFAULT '0', "completion_tokens" integer NOT NULL DEFAULT '0', "latency_ms" integer, "attempts" integer NOT NULL DEFAULT '1', CONSTRAINT "PK_140681296bf033ab1eb95288abb" PRIMARY KEY ("id"))`);
    await q.query(`CREATE UNIQUE INDEX "IDX_9b82fae3e89ea06665be9537e9" ON "candidates"  ("run_id", "image_id", "sample_index") WHERE run_id IS NOT NULL`);
    await q.query(`CREATE INDEX "IDX_0202e6e304ccd9b00cf20ed3fa" ON "candidates"  ("project_id", "status") `);
    await q.query(`CREATE INDEX "IDX_f64c1943e96f194eb83b256d6a" ON "candidates"  ("project_id", "run_id") `);
    await q.query(`CREATE INDEX "IDX_aeb286503bf3fd907f5931f2a1" ON "candidates"  ("project_id", "image_id") `);
    await q.query(`CREATE INDEX "IDX_e6b7ea41eb0de4700cdeb8c10c" ON "candidates"  ("project_id", "created_at", "id") `);
    await q.query(`CREATE TYPE "public"."preference_source" AS ENUM('CLINICIAN', 'MODEL')`);
    await q.query(`CREATE TYPE "public"."preference_kind" AS ENUM('PAIRWISE', 'RATING', 'ACCEPTANCE')`);
    await q.query(`CREATE TYPE "public"."pairwise_choice" AS ENUM('A', 'B', 'TIE')`);
    await q.query(`CREATE TABLE "preferences" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "created_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(), "project_id" uuid NOT NULL, "candidate_id" uuid NOT NULL, "source" "public"."preference_source" NOT NULL, "kind" "public"."preference_kind" NOT NULL, "annotator_id" uuid, "judge_model" text, "run_id" uuid, "round_index" integer, "other_candidate_id" uuid, "choice" "public"."pairwise_choice", "rating" double precision, "rubric_version" text, "rationale" text, "answer_index" integer, "accepted" boolean, CONSTRAINT "chk_preference_author" CHECK ((source = 'CLINICIAN' AND annotator_id IS NOT NULL) OR (source = 'MODEL' AND judge_model IS NOT NULL)), CONSTRAINT "chk_preference_acceptance" CHECK (kind <> 'ACCEPTANCE' OR (accepted IS NOT NULL AND answer_index IS NOT NULL)), CONSTRAINT "chk_preference_rating" CHECK (kind <> 'RATING' OR (rating IS NOT NULL AND rating >= 0 AND rating <= 10 AND rubric_version IS NOT NULL)), CONSTRAINT "chk_preference_pairwise" CHECK (kind <> 'PAIRWISE' OR choice IS NOT NULL), CONSTRAINT "PK_17f8855e4145192bbabd91a51be" PRIMARY KEY ("id")); COMMENT ON COLUMN "preferences"."other_candidate_id" IS 'pairwise between two candidates: B; null when A/B are the two answers of a round'`);
    await q.query(`CREATE INDEX "IDX_5e5623a09dbae146bc7ba77a76" ON "preferences"  ("project_id", "annotator_id") `);
    await q.query(`CREATE INDEX "IDX_e38337a27b2712c2724d5e2cce" ON "preferences"  ("project_id", "source", "kind") `);
    await q.query(`CREATE INDEX "IDX_87657bd13eca7317f377d44747" ON "preferences"  ("project_id", "candidate_id") `);
    await q.query(`CREATE INDEX "IDX_716fdd78ed25d3b06218011ef5" ON "preferences"  ("project_id", "created_at", "id") `);
    await q.query(`CREATE TABLE "selector_models" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "created_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(), "project_id" uuid NOT NULL, "name" text NOT NULL, "version" integer NOT NULL, "files_hash" character(64) NOT NULL, "manifest" jsonb NOT NULL, "metrics" jsonb, "active" boolean NOT NULL DEFAULT false, CONSTRAINT "PK_7d59240c0cc0fc5afcad216454a" PRIMARY KEY ("id"))`);
    await q.query(`CREATE INDEX "IDX_9cb99b5ae262746433fa9068bd" ON "selector_models"  ("project_id", "created_at", "id") `);
    await q.query(`CREATE UNIQUE INDEX "IDX_737b137c940164592db08c10b7" ON "selector_models"  ("project_id") WHERE active`);
    await q.query(`CREATE UNIQUE INDEX "IDX_f430ec9b15636ada14088021d6" ON "selector_models"  ("project_id", "name", "version") `);
    await q.query(`CREATE TABLE "scores" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "created_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(), "project_id" uuid NOT NULL, "candidate_id" uuid NOT NULL, "selector_model_id" uuid NOT NULL, "value" double precision NOT NULL, "run_id" uuid, CONSTRAINT "PK_c36917e6f26293b91d04b8fd521" PRIMARY KEY ("id"))`);
    await q.query(`CREATE INDEX "IDX_216d5baa45bb1d4a80bf796369" ON "scores"  ("project_id", "selector_model_id", "value", "candidate_id") `);
    await q.query(`CREATE UNIQUE INDEX "IDX_8e54c994b7a3acb6ba1e070f85" ON "scores"  ("candidate_id", "selector_model_id") `);
    await q.query(`CREATE TABLE "datasets" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "created_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(), "project_id" uuid NOT NULL, "name" text NOT NULL, "version" integer NOT NULL, "selector_model_id" uuid, "rule" jsonb NOT NULL, "item_count" integer NOT NULL DEFAULT '0', "counts_by_modality" jsonb NOT NULL DEFAULT '{}', "content_hash" character(64), CONSTRAINT "PK_1bf831e43c559a240303e23d038" PRIMARY KEY ("id"))`);
    await q.query(`CREATE INDEX "IDX_8d7abb5d5a53aa3131e4863086" ON "datasets"  ("project_id", "created_at", "id") `);
    await q.query(`CREATE UNIQUE INDEX "IDX_49639589398bc4931fc8aa5fbf" ON "datasets"  ("project_id", "name", "version") `);
    await q.query(`CREATE TABLE "dataset_items" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "created_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(), "project_id" uuid NOT NULL, "dataset_id" uuid NOT NULL, "candidate_id" uuid NOT NULL, "rank" integer NOT NULL, "score" double precision, CONSTRAINT "PK_7208ee4da879a7cbb19c7858130" PRIMARY KEY ("id"))`);
    await q.query(`CREATE UNIQUE INDEX "IDX_2db88f9546439f2b7763784e6a" ON "dataset_items"  ("dataset_id", "candidate_id") `);
    await q.query(`CREATE UNIQUE INDEX "IDX_89aef816126a0207032a48b8aa" ON "dataset_items"  ("dataset_id", "rank") `);
    await q.query(`CREATE TYPE "public"."run_kind" AS ENUM('GENERATION', 'RATING', 'CLUSTERING', 'SCORING', 'TRAINING', 'EXPORT')`);
    await q.query(`CREATE TYPE "public"."run_status" AS ENUM('QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED')`);
    await q.query(`CREATE TABLE "runs" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "created_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(), "project_id" uuid NOT NULL, "kind" "public"."run_kind" NOT NULL, "status" "public"."run_status" NOT NULL DEFAULT 'QUEUED', "params" jsonb NOT NULL DEFAULT '{}', "total" integer NOT NULL DEFAULT '0', "done" integer NOT NULL DEFAULT '0', "failed" integer NOT NULL DEFAULT '0', "prompt_tokens" bigint NOT NULL DEFAULT '0', "completion_tokens" bigint NOT NULL DEFAULT '0', "cost_usd" numeric(12,6) NOT NULL DEFAULT '0', "last_error" text, "created_by_id" uuid, "started_at" TIMESTAMP(3) WITH TIME ZONE, "finished_at" TIMESTAMP(3) WITH TIME ZONE, "cancel_requested_at" TIMESTAMP(3) WITH TIME ZONE, CONSTRAINT "PK_46d6a1e257c38ba58f1a3c30836" PRIMARY KEY ("id"))`);
    await q.query(`CREATE INDEX "IDX_37cf309715bc551d03e399d84d" ON "runs"  ("project_id", "kind", "status") `);
    await q.query(`CREATE INDEX "IDX_a2719bf81f608cb76eeef121c1" ON "runs"  ("project_id", "created_at", "id") `);
    await q.query(`ALTER TABLE "memberships" ADD CONSTRAINT "FK_7c1e2fdfed4f6838e0c05ae5051" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE NO ACTION`);
    await q.query(`ALTER TABLE "memberships" ADD CONSTRAINT "FK_6ab5ba6eb101e826e5a86561083" FOREIGN KEY ("project_id") REFERENCES "projects"("id") ON DELETE CASCADE ON UPDATE NO ACTION`);
    await q.query(`ALTER TABLE "api_keys" ADD CONSTRAINT "FK_a3baee01d8408cd3c0f89a9a973" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE NO ACTION`);
    await q.query(`ALTER TABLE "api_keys" ADD CONSTRAINT "FK_f5de07dbb229225e2be643ff3d0" FOREIGN KEY ("project_id") REFERENCES "projects"("id") ON DELETE CASCADE ON UPDATE NO ACTION`);
    await q.query(`ALTER TABLE "images" ADD CONSTRAINT "FK_194625052dc6bbadaa0c250468b" FOREIGN KEY ("project_id") REFERENCES "projects"("id") ON DELETE CASCADE ON UPDATE NO ACTION`);
    await q.query(`ALTER TABLE "demonstrations" ADD CONSTRAINT "FK_03537af2c2ad290a497787afb7d" FOREIGN KEY ("image_id") REFERENCES "images"("id") ON DELETE CASCADE ON UPDATE NO ACTION`);
    await q.query(`ALTER TABLE "candidates" ADD CONSTRAINT "FK_c8c6a3f2cdccb7ba3ae8ed9c23b" FOREIGN KEY ("image_id") REFERENCES "images"("id") ON DELETE CASCADE ON UPDATE NO ACTION`);
    await q.query(`ALTER TABLE "preferences" ADD CONSTRAINT "FK_7445009488c8741c4aceeead083" FOREIGN KEY ("candidate_id") REFERENCES "candidates"("id") ON DELETE CASCADE ON UPDATE NO ACTION`);
    await q.query(`ALTER TABLE "scores" ADD CONSTRAINT "FK_cd07725fa757b906162c565bae7" FOREIGN KEY ("candidate_id") REFERENCES "candidates"("id") ON DELETE CASCADE ON UPDATE NO ACTION`);
    await q.query(`ALTER TABLE "scores" ADD CONSTRAINT "FK_91f2a9eae81afc4ee9b2b4cf302" FOREIGN KEY ("selector_model_id") REFERENCES "selector_models"("id") ON DELETE CASCADE ON UPDATE NO ACTION`);
    await q.query(`ALTER TABLE "dataset_items" ADD CONSTRAINT "FK_a918413f4732da3ac8fa7837a48" FOREIGN KEY ("dataset_id") REFERENCES "datasets"("id") ON DELETE CASCADE ON UPDATE NO ACTION`);
    await q.query(`ALTER TABLE "dataset_items" ADD CONSTRAINT "FK_65de5a66dcccd5b5ff7e71eb283" FOREIGN KEY ("candidate_id") REFERENCES "candidates"("id") ON DELETE RESTRICT ON UPDATE NO ACTION`);

    // Written by hand: what entity decorators cannot express.
    await q.query(`CREATE TABLE "blob_objects" ("key" text PRIMARY KEY, "content_type" text NOT NULL, "byte_size" integer NOT NULL, "data" bytea NOT NULL, "created_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now())`);
    await q.query(`CREATE TABLE "app_settings" ("key" text PRIMARY KEY, "value" text NOT NULL)`);
    await q.query(`CREATE INDEX "idx_images_caption_fts" ON "images" USING gin (to_tsvector('english', "caption"))`);
    await q.query(`CREATE INDEX "idx_images_modalities" ON "images" USING gin ("modalities")`);
    for (const table of ['demonstrations', 'candidates', 'preferences', 'selector_models', 'scores', 'datasets', 'dataset_items', 'runs']) {
      await q.query(`ALTER TABLE "${table}" ADD CONSTRAINT "fk_${table}_project" FOREIGN KEY ("project_id") REFERENCES "projects"("id") ON DELETE CASCADE`);
    }
    await q.query(`ALTER TABLE "candidates" ADD CONSTRAINT "fk_candidates_run" FOREIGN KEY ("run_id") REFERENCES "runs"("id") ON DELETE SET NULL`);
    await q.query(`ALTER TABLE "demonstrations" ADD CONSTRAINT "fk_demonstrations_selected_by" FOREIGN KEY ("selected_by_id") REFERENCES "users"("id") ON DELETE SET NULL`);
    await q.query(`ALTER TABLE "demonstrations" ADD CONSTRAINT "fk_demonstrations_source_candidate" FOREIGN KEY ("source_candidate_id") REFERENCES "candidates"("id") ON DELETE SET NULL`);
    await q.query(`ALTER TABLE "preferences" ADD CONSTRAINT "fk_preferences_annotator" FOREIGN KEY ("annotator_id") REFERENCES "users"("id") ON DELETE SET NULL`);
    await q.query(`ALTER TABLE "preferences" ADD CONSTRAINT "fk_preferences_other_candidate" FOREIGN KEY ("other_candidate_id") REFERENCES "candidates"("id") ON DELETE CASCADE`);
    await q.query(`ALTER TABLE "datasets" ADD CONSTRAINT "fk_datasets_selector_model" FOREIGN KEY ("selector_model_id") REFERENCES "selector_models"("id") ON DELETE SET NULL`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE IF EXISTS "app_settings"`);
    await q.query(`DROP TABLE IF EXISTS "blob_objects"`);
    for (const table of ['dataset_items', 'datasets', 'scores', 'selector_models', 'preferences', 'demonstrations', 'candidates', 'images', 'runs', 'api_keys', 'memberships', 'users', 'projects']) {
      await q.query(`DROP TABLE IF EXISTS "${table}" CASCADE`);
    }
    for (const type of ['run_status', 'run_kind', 'pairwise_choice', 'preference_kind', 'preference_source', 'candidate_form', 'candidate_status', 'image_source', 'modality', 'role']) {
      await q.query(`DROP TYPE IF EXISTS "public"."${type}"`);
    }
  }
}
