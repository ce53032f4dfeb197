import { Column, CreateDateColumn, Entity, PrimaryColumn } from 'typeorm';

/**
 * One stored embedding: an image's `image_embeds` row (key: the image id) or a text's `text_embeds`
 * row (key: SHA-256 of the text), per encoder. Computed once; training, evaluation and scoring with
 * a trained head read these and never run the encoder again. `vector` is float32 little-endian.
 */
@Entity({ name: 'encoder_embeddings' })
export class EncoderEmbedding {
  @PrimaryColumn('uuid')
  encoderId: string;

  @PrimaryColumn('text')
  kind: EmbeddingKind;

  @PrimaryColumn('text')
  key: string;

  @Column('uuid')
  projectId: string;

  @Column('bytea')
  vector: Buffer;

  @CreateDateColumn({ type: 'timestamptz', precision: 3 })
  createdAt: Date;
}

export type EmbeddingKind = 'image' | 'text';
