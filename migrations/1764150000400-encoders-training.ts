import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Issue 11: encoders (frozen models selectors are trained over) with their stored embeddings,
 * training runs' epochs (each with the checkpoint a resumed run continues from) and results, and
 * the training provenance of a selector version trained in the service.
 */
export class EncodersTraining1764150000400 implements MigrationInterface {
  name = 'EncodersTraining1764150000400';

  async up(q: QueryRunner): Promise<void> {
    await q.query(
      `CREATE TABLE "encoder_models" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "created_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(), "project_id" uuid NOT NULL, "name" text NOT NULL, "version" integer NOT NULL, "files_hash" character(64) NOT NULL, "manifest" jsonb NOT NULL, "image_dim" integer NOT NULL, "text_dim" integer NOT NULL, "description" text, "files" jsonb NOT NULL DEFAULT '{}', "signature" jsonb NOT NULL DEFAULT '{}', "created_by_id" uuid, CONSTRAINT "PK_2e9965c5843bf95ab5102be93d1" PRIMARY KEY ("id"))`,
    );
    await q.query(`CREATE INDEX "IDX_288e374e4be8ca196b9532745d" ON "encoder_models" ("project_id", "created_at", "id")`);
    await q.query(`CREATE UNIQUE INDEX "IDX_e18852e672bde94945b160287c" ON "encoder_models" ("project_id", "name", "version")`);
    await q.query(
      `CREATE TABLE "encoder_embeddings" ("encoder_id" uuid NOT NULL, "kind" text NOT NULL, "key" text NOT NULL, "project_id" uuid NOT NULL, "vector" bytea NOT NULL, "created_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_6edb712a27ac3eb792cb0ad60bf" PRIMARY KEY ("encoder_id", "kind", "key"))`,
    );
    await q.query(
      `CREATE TABLE "training_epochs" ("run_id" uuid NOT NULL, "clinician_weight" double precision NOT NULL, "epoch" integer NOT NULL, "project_id" uuid NOT NULL, "training_loss" double precision NOT NULL, "training_alignment" double precision NOT NULL, "validation_alignment" double precision, "steps" integer NOT NULL, "checkpoint" bytea, "created_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_c85f6f960e05e93553c97c2dee3" PRIMARY KEY ("run_id", "clinician_weight", "epoch"))`,
    );
    await q.query(
      `CREATE TABLE "training_results" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "created_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(), "project_id" uuid NOT NULL, "run_id" uuid NOT NULL, "clinician_weight" double precision NOT NULL, "selector_model_id" uuid NOT NULL, "metrics" jsonb NOT NULL, CONSTRAINT "PK_83805c7a7b7612e1eaffa7a445a" PRIMARY KEY ("id"))`,
    );
    await q.query(`CREATE UNIQUE INDEX "IDX_61bec13e78c2a251a3555bd3f0" ON "training_results" ("run_id", "clinician_weight")`);
    await q.query(`ALTER TABLE "selector_models" ADD "encoder_id" uuid`);
    await q.query(`ALTER TABLE "selector_models" ADD "training_run_id" uuid`);
    await q.query(`ALTER TABLE "selector_models" ADD "training" jsonb`);
    await q.query(`ALTER TABLE "selector_models" ADD "head" jsonb`);
    // Hand-written foreign keys, as the earlier migrations: a project's deletion takes these rows with it.
    for (const table of ['encoder_models', 'encoder_embeddings', 'training_epochs', 'training_results']) {
      await q.query(`ALTER TABLE "${table}" ADD CONSTRAINT "fk_${table}_project" FOREIGN KEY ("project_id") REFERENCES "projects"("id") ON DELETE CASCADE`);
    }
    await q.query(`ALTER TABLE "encoder_embeddings" ADD CONSTRAINT "fk_encoder_embeddings_encoder" FOREIGN KEY ("encoder_id") REFERENCES "encoder_models"("id") ON DELETE CASCADE`);
    await q.query(`ALTER TABLE "training_epochs" ADD CONSTRAINT "fk_training_epochs_run" FOREIGN KEY ("run_id") REFERENCES "runs"("id") ON DELETE CASCADE`);
    await q.query(`ALTER TABLE "training_results" ADD CONSTRAINT "fk_training_results_run" FOREIGN KEY ("run_id") REFERENCES "runs"("id") ON DELETE CASCADE`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "selector_models" DROP COLUMN "head"`);
    await q.query(`ALTER TABLE "selector_models" DROP COLUMN "training"`);
    await q.query(`ALTER TABLE "selector_models" DROP COLUMN "training_run_id"`);
    await q.query(`ALTER TABLE "selector_models" DROP COLUMN "encoder_id"`);
    await q.query(`DROP TABLE "training_results"`);
    await q.query(`DROP TABLE "training_epochs"`);
    await q.query(`DROP TABLE "encoder_embeddings"`);
    await q.query(`DROP TABLE "encoder_models"`);
  }
}
