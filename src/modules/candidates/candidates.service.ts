import { DataSource, EntityManager, InsertQueryBuilder, SelectQueryBuilder } from 'typeorm';
import type { StoredRound } from './conversation';
import { RequestContext } from '../projects/request-context';
import { badInput } from '../../platform/errors';
import { expectGlobalId } from '../../platform/ids';
import { applyKeyset, childPages, countChildren, ConnectionShape, PageArgs, SortDirection, toConnection } from '../../platform/pagination';
import { Candidate, CandidateForm, CandidateStatus } from './candidate.entity';
import { CandidateFilter, CandidateOrder, CandidateSelectionInput, CandidateSortField } from './candidates.inputs';
import { userError, UserErrorCode, UserErrorsException } from '../../platform/user-errors';
import { PlainRows } from '../../platform/plain-rows';

/** What a caller needs to know of a candidate to decide how to judge it, without its text. */
export interface CandidateBrief {
  id: string;
  imageId: string;
  form: CandidateForm;
  /** The number of answers of each round. */
  roundAnswers: number[];
  sampleIndex: number;
}

export class CandidatesService {
  /** Hot lists (pages, loaders) read rows into entities without TypeORM's generic transformer. */
  private readonly rows: PlainRows<Candidate>;

  constructor(private readonly ds: DataSource) {
    this.rows = PlainRows.of(ds, Candidate);
  }

  async list(ctx: RequestContext, page: PageArgs, filter?: CandidateFilter | null, order?: CandidateOrder | null): Promise<ConnectionShape<Candidate>> {
    const direction = order?.direction ?? SortDirection.DESC;
    if (order?.field === CandidateSortField.SCORE) {
      if (!order.selectorModelId) throw badInput('Sorting by SCORE needs orderBy.selectorModelId', 'orderBy.selectorModelId');
      const selectorModelId = expectGlobalId(order.selectorModelId, 'SelectorModel', 'orderBy.selectorModelId');
      const base = () => this.filtered(ctx, filter).innerJoin('scores', 'sort', 'sort.candidate_id = c.id AND sort.selector_model_id = :sortSel', { sortSel: selectorModelId });
      const qb = applyKeyset(base().addSelect('sort.value', 'sort_value'), { sortExpr: 'sort.value', idExpr: 'c.id', direction, kind: 'number' }, page);
      const { raw, entities } = await this.rows.getRawAndEntities(qb);
      const scoreById = new Map(raw.map((r) => [r.c_id as string, Number(r.sort_value)]));
      return toConnection(entities, page, (c) => ({ value: scoreById.get(c.id)!, id: c.id }), () => base().getCount());
    }
    const base = () => this.filtered(ctx, filter);
    const rows = await this.rows.getMany(applyKeyset(base(), { sortExpr: 'c.createdAt', idExpr: 'c.id', direction }, page));
    return toConnection(rows, page, (c) => ({ value: c.createdAt, id: c.id }), () => base().getCount());
  }

  async findById(ctx: RequestContext, id: string): Promise<Candidate | null> {
    return this.ds.getRepository(Candidate).findOneBy({ id, projectId: ctx.projectId });
  }

  async findByIds(ctx: RequestContext, ids: readonly string[]): Promise<Candidate[]> {
    if (ids.length === 0) return [];
    return this.rows.query(`SELECT ${this.rows.select('c')} FROM candidates c WHERE c.id = ANY($1::uuid[]) AND c.project_id = $2`, [[...ids], ctx.projectId], 'c');
  }

  /**
   * A query for the ids of the candidates a selection picks (alias `c`), for freezing a run's targets
   * or choosing a dataset. Candidate ids that are not the project's are NOT_FOUND; generation run ids
   * are checked by the caller.
   */
  async selectIds(ctx: RequestContext, selection: CandidateSelectionInput | null | undefined, field: string[]) {
    const qb = this.ds.getRepository(Candidate).createQueryBuilder('c').select('c.id', 'id').where('c.projectId = :p', { p: ctx.projectId });
    qb.andWhere('c.status = ANY(:statuses::candidate_status[])', { statuses: selection?.statuses?.length ? selection.statuses : [CandidateStatus.OK] });
    if (selection?.generationRunIds?.length) {
      const runIds = selection.generationRunIds.map((id) => expectGlobalId(id, 'Run', [...field, 'generationRunIds'].join('.')));
      qb.andWhere('c.runId = ANY(:runIds::uuid[])', { runIds });
    }
    if (selection?.candidateIds?.length) {
      const ids = [...new Set(selection.candidateIds.map((id) => expectGlobalId(id, 'Candidate', [...field, 'candidateIds'].join('.'))))];
      const found = await this.ds.getRepository(Candidate).createQueryBuilder('c').where('c.projectId = :p AND c.id = ANY(:ids::uuid[])', { p: ctx.projectId, ids }).getCount();
      if (found !== ids.length) throw new UserErrorsException([userError(UserErrorCode.NOT_FOUND, `${ids.length - found} of the candidates were not found`, [...field, 'candidateIds'])]);
      qb.andWhere('c.id = ANY(:ids::uuid[])', { ids });
    }
    if (selection?.modalities?.length) {
      qb.andWhere('EXISTS (SELECT 1 FROM images si WHERE si.id = c.image_id AND si.modalities && :modalities::modality[])', { modalities: selection.modalities });
    }
    return qb;
  }

  /** The project's latest OK candidate whose image has bytes, with its image; a real sample for a selector's dry run. */
  async latestOkWithImage(ctx: RequestContext): Promise<Candidate | null> {
    return this.ds
      .getRepository(Candidate)
      .createQueryBuilder('c')
      .innerJoinAndSelect('c.image', 'image', 'image.contentHash IS NOT NULL')
      .where('c.projectId = :p AND c.status = :ok', { p: ctx.projectId, ok: 'OK' })
      .orderBy('c.createdAt', 'DESC')
      .addOrderBy('c.id', 'DESC')
      .limit(1)
      .getOne();
  }

  /** The first page of candidates of each image, in one statement. */
  async pagesByImage(ctx: RequestContext, imageIds: readonly string[], page: PageArgs): Promise<Candidate[]> {
    return childPages(this.ds.getRepository(Candidate), { table: 'candidates', parentColumn: 'image_id', projectId: ctx.projectId, parentIds: imageIds, page });
  }

  async countsByImage(ctx: RequestContext, imageIds: readonly string[]): Promise<number[]> {
    return countChildren(this.ds, { table: 'candidates', parentColumn: 'image_id', projectId: ctx.projectId, parentIds: imageIds });
  }

  private filtered(ctx: RequestContext, filter?: CandidateFilter | null) {
    const qb = this.ds.getRepository(Candidate).createQueryBuilder('c').where('c.projectId = :projectId', { projectId: ctx.projectId });
    if (filter?.imageId) qb.andWhere('c.imageId = :imageId', { imageId: expectGlobalId(filter.imageId, 'Image', 'filter.imageId') });
    if (filter?.runId) qb.andWhere('c.runId = :runId', { runId: expectGlobalId(filter.runId, 'Run', 'filter.runId') });
    if (filter?.statuses?.length) qb.andWhere('c.status IN (:...statuses)', { statuses: filter.statuses });
    if (filter?.score) {
      const selectorModelId = expectGlobalId(filter.score.selectorModelId, 'SelectorModel', 'filter.score.selectorModelId');
      qb.innerJoin('scores', 'fs', 'fs.candidate_id = c.id AND fs.selector_model_id = :filterSel', { filterSel: selectorModelId });
      if (filter.score.min != null) qb.andWhere('fs.value >= :minScore', { minScore: filter.score.min });
      if (filter.score.max != null) qb.andWhere('fs.value <= :maxScore', { maxScore: filter.score.max });
    }
    if (filter?.hasPreferences != null) {
      const exists = 'EXISTS (SELECT 1 FROM preferences p WHERE p.candidate_id = c.id AND p.project_id = c.project_id)';
      qb.andWhere(filter.hasPreferences ? exists : `NOT ${exists}`);
    }
    return qb;
  }

  /**
   * The OK candidates a filter picks (oldest first), or the project's OK candidates with these ids
   * (in the order given), at most `limit`: what an annotation campaign freezes as its items. A
   * filter's candidates come oldest first, or by image and sample (a generation run's order).
   */
  async briefs(ctx: RequestContext, source: { filter?: CandidateFilter | null; ids?: readonly string[]; byImageAndSample?: boolean }, limit: number): Promise<CandidateBrief[]> {
    const qb = source.ids ? this.ds.getRepository(Candidate).createQueryBuilder('c').where('c.projectId = :projectId AND c.id = ANY(:ids::uuid[])', { projectId: ctx.projectId, ids: [...source.ids] }) : this.filtered(ctx, source.filter);
    const rows = await qb
      .andWhere('c.status = :ok', { ok: CandidateStatus.OK })
      .select(['c.id', 'c.imageId', 'c.form', 'c.rounds', 'c.sampleIndex', 'c.createdAt'])
      .orderBy(source.byImageAndSample ? 'c.imageId' : 'c.createdAt', 'ASC')
      .addOrderBy(source.byImageAndSample ? 'c.sampleIndex' : 'c.id', 'ASC')
      .addOrderBy('c.id', 'ASC')
      .limit(limit)
      .getMany();
    const briefs = rows.map((c) => ({ id: c.id, imageId: c.imageId, form: c.form, roundAnswers: c.rounds.map((r) => r.answers.length), sampleIndex: c.sampleIndex }));
    if (!source.ids) return briefs;
    const byId = new Map(briefs.map((b) => [b.id, b]));
    return source.ids.map((id) => byId.get(id)).filter((b): b is CandidateBrief => b !== undefined);
  }

  /** The (image, sample) pairs a generation run already stored a candidate for: what a resumed run skips. */
  async samplesOfRun(ctx: RequestContext, runId: string): Promise<{ imageId: string; sampleIndex: number }[]> {
    const rows: { image_id: string; sample_index: number }[] = await this.ds.query(`SELECT image_id, sample_index FROM candidates WHERE project_id = $1 AND run_id = $2`, [ctx.projectId, runId]);
    return rows.map((r) => ({ imageId: r.image_id, sampleIndex: r.sample_index }));
  }

  /** A run's PARSE_FAILED candidates that kept the model's reply: what a better parser may turn into results. */
  async parseFailedReplies(ctx: RequestContext, runId: string): Promise<{ id: string; rawOutput: string }[]> {
    const rows: { id: string; raw_output: string }[] = await this.ds.query(
      `SELECT id, raw_output FROM candidates WHERE project_id = $1 AND run_id = $2 AND status = 'PARSE_FAILED' AND raw_output IS NOT NULL ORDER BY id`,
      [ctx.projectId, runId],
    );
    return rows.map((r) => ({ id: r.id, rawOutput: r.raw_output }));
  }

  /**
   * The statement that turns a PARSE_FAILED candidate whose reply now parses into an OK one, in place
   * and only while it is still PARSE_FAILED (so a repeated re-parse changes nothing), returning a row
   * when it did: for the runs kernel to wrap with the run's counters.
   */
  reparsedToOk(ctx: RequestContext, candidateId: string, rounds: StoredRound[]): { sql: string; params: unknown[] } {
    return {
      sql: `UPDATE candidates SET status = 'OK', rounds = $2::jsonb, failure_reason = NULL, updated_at = now()
            WHERE id = $1 AND project_id = $3 AND status = 'PARSE_FAILED' RETURNING 1`,
      params: [candidateId, JSON.stringify(rounds), ctx.projectId],
    };
  }

  /** The one-row INSERT of a generated candidate, for the runs kernel to wrap with the run's counters in one statement. */
  insertFromRun(ctx: RequestContext, values: Omit<Partial<Candidate>, 'projectId'>): InsertQueryBuilder<Candidate> {
    return this.ds.createQueryBuilder().insert().into(Candidate).values({ ...values, projectId: ctx.projectId });
  }

  /** Image and rounds of the project's candidates with these ids, ordered by image (for workers rating or scoring them). */
  async conversations(ctx: RequestContext, ids: readonly string[]): Promise<{ id: string; imageId: string; rounds: StoredRound[] }[]> {
    const rows: { id: string; image_id: string; rounds: StoredRound[] }[] = await this.ds.query(
      `SELECT id, image_id, rounds FROM candidates WHERE project_id = $1 AND id = ANY($2::uuid[]) ORDER BY image_id, id`,
      [ctx.projectId, ids],
    );
    return rows.map((r) => ({ id: r.id, imageId: r.image_id, rounds: r.rounds }));
  }

  /** The image of each of the project's candidates with these ids, ordered by image (a scoring run's reading order). */
  async imagesOf(ctx: RequestContext, ids: readonly string[]): Promise<{ id: string; imageId: string }[]> {
    const rows: { id: string; image_id: string }[] = await this.ds.query(`SELECT id, image_id FROM candidates WHERE project_id = $1 AND id = ANY($2::uuid[]) ORDER BY image_id, id`, [ctx.projectId, ids]);
    return rows.map((r) => ({ id: r.id, imageId: r.image_id }));
  }

  /** How many answers the candidates a query selects hold, over all their rounds: a rating run's items. */
  async countAnswers(em: EntityManager, candidates: SelectQueryBuilder<object>): Promise<number> {
    const [sql, parameters] = candidates.getQueryAndParameters();
    const [{ count }]: { count: number }[] = await em.query(
      `SELECT coalesce(sum(jsonb_array_length(r.value -> 'answers')), 0)::int AS count
       FROM candidates c CROSS JOIN LATERAL jsonb_array_elements(c.rounds) r WHERE c.id IN (SELECT t.id FROM (${sql}) t)`,
      parameters,
    );
    return count;
  }
}
