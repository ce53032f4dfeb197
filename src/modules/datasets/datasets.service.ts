import { DataSource, EntityManager } from 'typeorm';
import { lockNextVersion } from '../../platform/versioning';
import { RequestContext } from '../projects/request-context';
import { Role } from '../projects/role';
import { applyKeyset, ConnectionShape, PageArgs, SortDirection, toConnection } from '../../platform/pagination';
import { expectGlobalId } from '../../platform/ids';
import { userError, UserErrorCode, UserErrorsException } from '../../platform/user-errors';
import { CandidatesService } from '../candidates/candidates.service';
import { RunsService } from '../runs/runs.service';
import { RunKind } from '../runs/run.entity';
import { ScoringService } from '../scoring/scoring.service';
import { Dataset } from './dataset.entity';
import { DatasetItem } from './dataset-item.entity';
import { CreateDatasetInput } from './datasets.inputs';
import type { WebhooksService } from '../webhooks/webhooks.service';

const invalid = (message: string, field: string[]) => new UserErrorsException([userError(UserErrorCode.INVALID, message, field)]);

/** Datasets: frozen, ranked selections of candidates, created by a rule and never changed after. */
export class DatasetsService {
  constructor(
    private readonly ds: DataSource,
    private readonly candidates: CandidatesService,
    private readonly scoring: ScoringService,
    private readonly runs: RunsService,
    private readonly webhooks?: Pick<WebhooksService, 'datasetCreated'>,
  ) {}

  /**
   * Applies a selection rule and freezes its result in one transaction: the items in rank order
   * (score under the rule's selector, best first, ties by candidate id), the rule with the selector's
   * version, counts per modality and a content hash over the ordered items and their scores.
   */
  async create(ctx: RequestContext, input: CreateDatasetInput): Promise<Dataset> {
    ctx.assertRole(Role.CURATOR);
    const name = input.name.trim();
    if (!/^[\w.-]{1,100}$/.test(name)) throw invalid('Use 1-100 letters, digits, dots, dashes or underscores', ['input', 'name']);
    if (input.topFraction != null && input.topK != null) throw invalid('Give topFraction or topK, not both', ['input', 'topK']);
    if (input.topFraction == null && input.topK == null && input.minScore == null) throw invalid('Give topFraction, topK or minScore', ['input']);
    const selector = await this.scoring.resolveSelector(ctx, input.selectorModelId, ['input', 'selectorModelId']);
    await this.runs.assertRunsOfKind(ctx, input.candidates?.generationRunIds, RunKind.GENERATION, ['input', 'candidates', 'generationRunIds']);
    const unionIds = [...new Set((input.unionDatasetIds ?? []).map((id) => expectGlobalId(id, 'Dataset', 'input.unionDatasetIds')))];
    const selection = await this.candidates.selectIds(ctx, input.candidates, ['input', 'candidates']);
    const rule = {
      selector: { id: selector.globalId, name: selector.name, version: selector.version, filesHash: selector.filesHash },
      topFraction: input.topFraction ?? null,
      topK: input.topK ?? null,
      minScore: input.minScore ?? null,
      candidates: { ...(input.candidates ?? {}) },
      unionDatasetIds: input.unionDatasetIds ?? [],
    };

    return this.ds.transaction(async (em) => {
      const next = await lockNextVersion(em, Dataset, ctx.projectId, name);
      if (unionIds.length) {
        const [{ found }]: { found: number }[] = await em.query(`SELECT count(*)::int AS found FROM datasets WHERE project_id = $1 AND id = ANY($2::uuid[])`, [ctx.projectId, unionIds]);
        if (found !== unionIds.length) throw new UserErrorsException([userError(UserErrorCode.NOT_FOUND, `${unionIds.length - found} of the datasets were not found`, ['input', 'unionDatasetIds'])]);
      }
      const dataset = await em.getRepository(Dataset).save(
        em.getRepository(Dataset).create({ projectId: ctx.projectId, name, version: next, description: input.description?.trim() || null, selectorModelId: selector.id, rule, createdById: ctx.userId }),
      );
      const [selectionSql, selectionParams] = selection.getQueryAndParameters();
      const itemCount = await this.freezeItems(em, dataset, selectionSql, selectionParams, { selectorId: selector.id, topFraction: input.topFraction, topK: input.topK, minScore: input.minScore, unionIds });
      if (itemCount === 0) throw invalid('The rule selects no candidate: are the candidates scored by this selector?', ['input']);
      const summary = await this.summarize(em, dataset.id);
      await em.update(Dataset, { id: dataset.id }, { itemCount, countsByModality: summary.countsByModality, contentHash: summary.contentHash });
      Object.assign(dataset, { itemCount, ...summary });
      await this.webhooks?.datasetCreated(em, dataset, ctx.requestId);
      return dataset;
    });
  }

  private async freezeItems(
    em: EntityManager,
    dataset: Dataset,
    selectionSql: string,
    selectionParams: unknown[],
    rule: { selectorId: string; topFraction?: number | null; topK?: number | null; minScore?: number | null; unionIds: string[] },
  ): Promise<number> {
    const at = (n: number) => `$${selectionParams.length + n}`;
    const limit = rule.topK != null ? `rn <= ${at(4)}::float8` : rule.topFraction != null ? `rn <= ceil(n * ${at(4)}::float8)` : `${at(4)}::float8 IS NULL`;
    const rows: { count: number }[] = await em.query(
      `WITH ranked AS (
         SELECT s.candidate_id, s.value AS score, row_number() OVER (ORDER BY s.value DESC, s.candidate_id) AS rn, count(*) OVER () AS n
           FROM (${selectionSql}) sel JOIN scores s ON s.candidate_id = sel.id AND s.selector_model_id = ${at(1)}),
       chosen AS (
         SELECT candidate_id, score FROM ranked WHERE ${limit} AND (${at(5)}::float8 IS NULL OR score >= ${at(5)}::float8)
         UNION
         SELECT di.candidate_id, s.value FROM dataset_items di
           LEFT JOIN scores s ON s.candidate_id = di.candidate_id AND s.selector_model_id = ${at(1)}
          WHERE di.project_id = ${at(2)} AND di.dataset_id = ANY(${at(6)}::uuid[])),
       inserted AS (
         INSERT INTO dataset_items (project_id, dataset_id, candidate_id, rank, score)
         SELECT ${at(2)}, ${at(3)}, candidate_id, row_number() OVER (ORDER BY score DESC NULLS LAST, candidate_id), score FROM chosen
         RETURNING 1)
       SELECT count(*)::int AS count FROM inserted`,
      [...selectionParams, rule.selectorId, dataset.projectId, dataset.id, rule.topK ?? rule.topFraction ?? null, rule.minScore ?? null, rule.unionIds],
    );
    return rows[0].count;
  }

  /** Counts per modality (an image with two modalities counts in both) and the content hash of the ordered items. */
  private async summarize(em: EntityManager, datasetId: string): Promise<{ countsByModality: Record<string, number>; contentHash: string }> {
    const [{ counts }]: { counts: Record<string, number> | null }[] = await em.query(
      `SELECT jsonb_object_agg(modality, n) AS counts FROM (
         SELECT coalesce(m::text, 'NONE') AS modality, count(*)::int AS n
           FROM dataset_items di JOIN candidates c ON c.id = di.candidate_id JOIN images i ON i.id = c.image_id
           LEFT JOIN LATERAL unnest(i.modalities) m ON true
          WHERE di.dataset_id = $1 GROUP BY 1) per_modality`,
      [datasetId],
    );
    const [{ hash }]: { hash: string }[] = await em.query(
      `SELECT encode(sha256(convert_to(coalesce(string_agg(candidate_id::text || ':' || coalesce(score::text, ''), E'\n' ORDER BY rank), ''), 'UTF8')), 'hex') AS hash
         FROM dataset_items WHERE dataset_id = $1`,
      [datasetId],
    );
    return { countsByModality: counts ?? {}, contentHash: hash };
  }

  async list(ctx: RequestContext, page: PageArgs): Promise<ConnectionShape<Dataset>> {
    const base = () => this.ds.getRepository(Dataset).createQueryBuilder('d').where('d.projectId = :p', { p: ctx.projectId });
    const rows = await applyKeyset(base(), { sortExpr: 'd.createdAt', idExpr: 'd.id', direction: SortDirection.DESC }, page).getMany();
    return toConnection(rows, page, (d) => ({ value: d.createdAt, id: d.id }), () => base().getCount());
  }

  /** Items in rank order; the cursor is the rank, so pages stay stable (a dataset never changes). */
  async items(ctx: RequestContext, datasetId: string, page: PageArgs): Promise<ConnectionShape<DatasetItem>> {
    const base = () =>
      this.ds.getRepository(DatasetItem).createQueryBuilder('i').where('i.projectId = :p AND i.datasetId = :d', { p: ctx.projectId, d: datasetId });
    const rows = await applyKeyset(base(), { sortExpr: 'i.rank', idExpr: 'i.id', direction: SortDirection.ASC, kind: 'number' }, page).getMany();
    return toConnection(rows, page, (i) => ({ value: i.rank, id: i.id }), () => base().getCount());
  }

  /** The candidate ids of one of the project's datasets in rank order (null when there is no such dataset): a campaign's items. */
  async candidateIdsInRank(ctx: RequestContext, datasetId: string, limit: number): Promise<string[] | null> {
    if (!(await this.findById(ctx, datasetId))) return null;
    const rows: { candidate_id: string }[] = await this.ds.query(`SELECT candidate_id FROM dataset_items WHERE project_id = $1 AND dataset_id = $2 ORDER BY rank LIMIT $3`, [ctx.projectId, datasetId, limit]);
    return rows.map((r) => r.candidate_id);
  }

  async findById(ctx: RequestContext, id: string): Promise<Dataset | null> {
    return this.ds.getRepository(Dataset).findOneBy({ id, projectId: ctx.projectId });
  }

  async findItemById(ctx: RequestContext, id: string): Promise<DatasetItem | null> {
    return this.ds.getRepository(DatasetItem).findOneBy({ id, projectId: ctx.projectId });
  }
}
