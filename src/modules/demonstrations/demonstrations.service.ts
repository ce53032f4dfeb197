import { DataSource, EntityManager, In } from 'typeorm';
import crypto from 'node:crypto';
import { RequestContext } from '../projects/request-context';
import { applyKeyset, ConnectionShape, PageArgs, SortDirection, toConnection } from '../../platform/pagination';
import { Modality } from '../images/modality';
import { ConversationTurn } from '../candidates/conversation';
import { Demonstration } from './demonstration.entity';

/** A demonstration as a prompt uses it: the conversation with its figure's text, modality and cluster. */
export interface PoolDemonstration {
  id: string;
  imageId: string;
  caption: string;
  mentions: string[];
  modalities: Modality[];
  clusterId: number | null;
  turns: ConversationTurn[];
}

export interface DemonstrationFilter {
  modalities?: Modality[] | null;
  active?: boolean | null;
}

const INSERT_CHUNK = 1000;

export function conversationHash(turns: ConversationTurn[]): string {
  return crypto.createHash('sha256').update(JSON.stringify(turns.map((t) => [t.from, t.value]))).digest('hex');
}

export class DemonstrationsService {
  constructor(private readonly ds: DataSource) {}

  async list(ctx: RequestContext, page: PageArgs, filter?: DemonstrationFilter | null): Promise<ConnectionShape<Demonstration>> {
    const base = () => {
      const qb = this.ds.getRepository(Demonstration).createQueryBuilder('d').where('d.projectId = :p', { p: ctx.projectId });
      if (filter?.active != null) qb.andWhere('d.active = :active', { active: filter.active });
      if (filter?.modalities?.length) {
        qb.andWhere('EXISTS (SELECT 1 FROM images i WHERE i.id = d.image_id AND i.modalities && :modalities::modality[])', { modalities: filter.modalities });
      }
      return qb;
    };
    const rows = await applyKeyset(base(), { sortExpr: 'd.createdAt', idExpr: 'd.id', direction: SortDirection.DESC }, page).getMany();
    return toConnection(rows, page, (d) => ({ value: d.createdAt, id: d.id }), () => base().getCount());
  }

  async findById(ctx: RequestContext, id: string): Promise<Demonstration | null> {
    return this.ds.getRepository(Demonstration).findOneBy({ id, projectId: ctx.projectId });
  }

  async findByIds(ctx: RequestContext, ids: readonly string[]): Promise<Demonstration[]> {
    if (ids.length === 0) return [];
    return this.ds.getRepository(Demonstration).findBy({ id: In([...ids]), projectId: ctx.projectId });
  }

  async setActive(ctx: RequestContext, id: string, active: boolean): Promise<Demonstration | null> {
    const repo = this.ds.getRepository(Demonstration);
    const result = await repo.update({ id, projectId: ctx.projectId }, { active, selectedById: ctx.userId });
    return result.affected ? repo.findOneBy({ id }) : null;
  }

  /**
   * Inserts inside the caller's transaction, a chunk of rows per statement (8 parameters a row stays
   * below Postgres's 65,535 a statement); a conversation already present is skipped.
   */
  async insertMany(em: EntityManager, ctx: RequestContext, rows: { imageId: string; turns: ConversationTurn[]; externalId: string | null }[]): Promise<number> {
    const values = rows.map((r) => ({
      projectId: ctx.projectId,
      imageId: r.imageId,
      turns: r.turns,
      conversationHash: conversationHash(r.turns),
      active: true,
      selectedById: ctx.userId,
      sourceCandidateId: null,
      externalId: r.externalId,
    }));
    let inserted = 0;
    for (let start = 0; start < values.length; start += INSERT_CHUNK) {
      const chunk = values.slice(start, start + INSERT_CHUNK);
      const result = await em.createQueryBuilder().insert().into(Demonstration).values(chunk).orIgnore().returning('id').execute();
      inserted += result.raw.length;
    }
    return inserted;
  }

  /**
   * A candidate's conversation as an active demonstration, inside the caller's transaction: a new
   * row, or the existing one with the same conversation about the same image, made active again.
   */
  async promoteConversation(em: EntityManager, ctx: RequestContext, row: { imageId: string; turns: ConversationTurn[]; sourceCandidateId: string }): Promise<Demonstration> {
    const rows: { id: string }[] = await em.query(
      `INSERT INTO demonstrations (project_id, image_id, turns, conversation_hash, active, selected_by_id, source_candidate_id)
       VALUES ($1, $2, $3::jsonb, $4, true, $5, $6)
       ON CONFLICT (project_id, image_id, conversation_hash) DO UPDATE SET active = true, selected_by_id = EXCLUDED.selected_by_id,
         source_candidate_id = coalesce(demonstrations.source_candidate_id, EXCLUDED.source_candidate_id), updated_at = now()
       RETURNING id`,
      [ctx.projectId, row.imageId, JSON.stringify(row.turns), conversationHash(row.turns), ctx.userId, row.sourceCandidateId],
    );
    return em.getRepository(Demonstration).findOneByOrFail({ id: rows[0].id });
  }

  /** Active demonstrations (or the given ones) with their figure's text, modality and cluster: what generation draws from. */
  async activePool(projectId: string, onlyIds?: string[]): Promise<PoolDemonstration[]> {
    const rows: { id: string; image_id: string; turns: ConversationTurn[]; caption: string; mentions: string[]; modalities: Modality[]; cluster_id: number | null }[] = await this.ds.query(
      `SELECT d.id, d.image_id, d.turns, i.caption, i.mentions, to_jsonb(i.modalities) AS modalities, i.cluster_id
       FROM demonstrations d JOIN images i ON i.id = d.image_id
       WHERE d.project_id = $1 AND ${onlyIds ? 'd.id = ANY($2::uuid[])' : 'd.active'} ORDER BY d.created_at, d.id`,
      onlyIds ? [projectId, onlyIds] : [projectId],
    );
    return rows.map((r) => ({
      id: r.id,
      imageId: r.image_id,
      turns: r.turns,
      caption: r.caption,
      mentions: r.mentions,
      modalities: r.modalities,
      clusterId: r.cluster_id,
    }));
  }
}
