import { Column, Entity, Index } from 'typeorm';
import { ProjectScopedEntity } from '../../platform/entity-base';

/**
 * The settled item of a training run: one per clinician weight of the sweep, naming the selector
 * version it registered. Inserted through RunsService.recordItem, so the run counts it once.
 */
@Entity({ name: 'training_results' })
@Index(['runId', 'clinicianWeight'], { unique: true })
export class TrainingResult extends ProjectScopedEntity {
  @Column('uuid')
  runId: string;

  @Column('double precision')
  clinicianWeight: number;

  @Column('uuid')
  selectorModelId: string;

  @Column('jsonb')
  metrics: Record<string, unknown>;
}
