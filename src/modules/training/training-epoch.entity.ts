import { Column, CreateDateColumn, Entity, PrimaryColumn } from 'typeorm';

/**
 * One completed epoch of a training run, for one clinician weight of its sweep: the metrics the
 * loss curve draws and, on the latest epoch only, the checkpoint (weights and Adam state) a resumed
 * run continues from. Epoch and checkpoint are written in one statement, so a crash leaves either
 * both or neither.
 */
@Entity({ name: 'training_epochs' })
export class TrainingEpoch {
  @PrimaryColumn('uuid')
  runId: string;

  @PrimaryColumn('double precision')
  clinicianWeight: number;

  @PrimaryColumn('int')
  epoch: number;

  @Column('uuid')
  projectId: string;

  @Column('double precision')
  trainingLoss: number;

  @Column('double precision')
  trainingAlignment: number;

  @Column('double precision', { nullable: true })
  validationAlignment: number | null;

  @Column('int')
  steps: number;

  /** The serialized trainer state after this epoch (training-checkpoint.ts); cleared once a later epoch is stored. */
  @Column('bytea', { nullable: true })
  checkpoint: Buffer | null;

  @CreateDateColumn({ type: 'timestamptz', precision: 3 })
  createdAt: Date;
}
