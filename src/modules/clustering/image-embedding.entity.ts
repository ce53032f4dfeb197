import { Column, CreateDateColumn, Entity, PrimaryColumn } from 'typeorm';

/** Text embeddings of caption + mentions, cached by model and text hash so re-clustering calls no API. */
@Entity({ name: 'image_embeddings' })
export class ImageEmbedding {
  @PrimaryColumn('uuid')
  projectId: string;

  @PrimaryColumn('text')
  model: string;

  @PrimaryColumn('char', { length: 64 })
  textHash: string;

  @Column('real', { array: true })
  vector: number[];

  @CreateDateColumn({ type: 'timestamptz', precision: 3 })
  createdAt: Date;
}
