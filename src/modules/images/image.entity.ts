import { Field, Int, ObjectType } from 'type-graphql';
import { Column, Entity, Index, JoinColumn, ManyToOne } from 'typeorm';
import { Node, ProjectScopedEntity } from '../../platform/entity-base';
import { Project } from '../projects/project.entity';
import { ImageSource, Modality } from './modality';

/**
 * A PubMed Central figure: its metadata always, its bytes when uploaded or imported with a file.
 * Bytes live in blob storage under the content hash, once per project.
 */
@ObjectType({ implements: Node, description: 'A biomedical figure with caption, in-text mentions and modality.' })
@Entity({ name: 'images' })
@Index(['projectId', 'createdAt', 'id'])
@Index(['projectId', 'contentHash'], { unique: true, where: 'content_hash IS NOT NULL' })
@Index(['projectId', 'pairId'], { unique: true, where: 'pair_id IS NOT NULL' })
@Index(['projectId', 'clusterId'])
@Index('idx_images_modalities', { synchronize: false })
@Index('idx_images_caption_fts', { synchronize: false })
export class Image extends ProjectScopedEntity {
  @Field(() => String, { nullable: true, description: 'PubMed id of the article.' })
  @Column('text', { nullable: true })
  pmid: string | null;

  @Field(() => String, { nullable: true, description: 'PMC pair id, `<pmid>_<figId>`; unique in a project.' })
  @Column('text', { nullable: true })
  pairId: string | null;

  @Field(() => String, { nullable: true })
  @Column('text', { nullable: true })
  figLabel: string | null;

  @Field(() => String, { nullable: true })
  @Column('text', { nullable: true })
  figId: string | null;

  @Field(() => String, { nullable: true, description: 'Path of the figure in the PMC archive.' })
  @Column('text', { nullable: true })
  graphicRef: string | null;

  @Field(() => String, { nullable: true, description: 'File name the figure was imported under.' })
  @Column('text', { nullable: true })
  fileName: string | null;

  @Field()
  @Column('text', { default: '' })
  caption: string;

  @Field(() => [String], { description: 'Sentences of the article that cite the figure, in order.' })
  @Column('text', { array: true, default: () => "'{}'" })
  mentions: string[];

  @Field(() => [Modality])
  @Column({ type: 'enum', enum: Modality, enumName: 'modality', array: true, default: () => "'{}'" })
  modalities: Modality[];

  @Field(() => ImageSource)
  @Column({ type: 'enum', enum: ImageSource, enumName: 'image_source' })
  source: ImageSource;

  @Field(() => String, { nullable: true, description: 'The http(s) URL the bytes were (or are to be) fetched from, for images imported by URL.' })
  @Column('text', { nullable: true })
  sourceUrl: string | null;

  @Field(() => String, { nullable: true, description: 'SHA-256 of the bytes; null while only the record is known.' })
  @Column('char', { length: 64, nullable: true })
  contentHash: string | null;

  @Field(() => String, { nullable: true })
  @Column('text', { nullable: true })
  mimeType: string | null;

  @Field(() => Int, { nullable: true })
  @Column('int', { nullable: true })
  width: number | null;

  @Field(() => Int, { nullable: true })
  @Column('int', { nullable: true })
  height: number | null;

  @Field(() => Int, { nullable: true })
  @Column('int', { nullable: true })
  byteSize: number | null;

  @Field(() => Int, { nullable: true, description: 'Diversity cluster from the latest clustering run.' })
  @Column('int', { nullable: true })
  clusterId: number | null;

  @ManyToOne(() => Project, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'project_id' })
  project?: Project;
}
