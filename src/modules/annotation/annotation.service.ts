import crypto from 'node:crypto';
import { DataSource, EntityManager } from 'typeorm';
import { RequestContext } from '../projects/request-context';
import { Role, roleAtLeast } from '../projects/role';
import type { ProjectsService } from '../projects/projects.service';
import { DomainError, ErrorCode } from '../../platform/errors';
import { expectGlobalId } from '../../platform/ids';
import { applyKeyset, ConnectionShape, PageArgs, SortDirection, toConnection } from '../../platform/pagination';
import { userError, UserErrorCode, UserErrorsException } from '../../platform/user-errors';
import { Candidate, CandidateForm } from '../candidates/candidate.entity';
import type { CandidateBrief, CandidatesService } from '../candidates/candidates.service';
import { Speaker, ConversationTurn } from '../candidates/conversation';
import type { DatasetsService } from '../datasets/datasets.service';
import type { DemonstrationsService } from '../demonstrations/demonstrations.service';
import { Demonstration } from '../demonstrations/demonstration.entity';
import { PairwiseChoice, PreferenceKind } from '../preferences/preference.entity';
import type { ClinicianJudgement, PreferencesService } from '../preferences/preferences.service';
import type { RunsService } from '../runs/runs.service';
import { RunKind } from '../runs/run.entity';
import type { WebhooksService } from '../webhooks/webhooks.service';
import { AnnotationCampaign, AnnotationItemSource, AnnotationRouting, AnnotationTaskKind } from './annotation-campaign.entity';
import { AnnotationItem, AnnotationItemStatus } from './annotation-item.entity';
import { AnnotationSlotState } from './annotation-lease.entity';
import { AnnotationPromotion } from './annotation-promotion.entity';
import { AnnotationSubmission } from './annotation-submission.entity';
import { AnnotationEvents } from './annotation-events';
import { annotationValues } from './routing-value';
import { CreateAnnotationCampaignInput, MAX_CAMPAIGN_ITEMS, SubmitAnnotationInput } from './annotation.inputs';

/** The rubric stored with campaign RATING preferences (a preference rating needs one). */
export const CAMPAIGN_RUBRIC = 'annotation-campaign/0-10';

const INSERT_CHUNK = 1000;

const invalid = (message: string, field: string[]) => new UserErrorsException([userError(UserErrorCode.INVALID, message, field)]);
const conflict = (message: string, field?: string[]) => new UserErrorsException([userError(UserErrorCode.CONFLICT, message, field)]);
const missing = (what: string, field: string[]) => new UserErrorsException([userError(UserErrorCode.NOT_FOUND, `${what} not found`, field)]);

export interface ItemStats {
  status: AnnotationItemStatus;
  submittedCount: number;
}

export interface ItemCounts {
  pending: number;
  inProgress: number;
  completed: number;
  total: number;
}

export interface ProgressRow {
  annotatorId: string;
  submitted: number;
  skipped: number;
  inProgress: number;
}

export interface LeasedTask {
  campaign: AnnotationCampaign;
  item: AnnotationItem;
  leaseExpiresAt: Date;
}

/**
 * The item status from its slots (alias `l`): COMPLETED when every slot is submitted (an item has
 * exactly `overlap` slots), IN_PROGRESS with a submission or an unexpired lease, PENDING otherwise.
 * Computed, not stored, because a lease expires with no write.
 */
const STATUS_OF_SLOTS = `CASE WHEN bool_and(l.state = 'SUBMITTED') THEN 'COMPLETED'
  WHEN bool_or(l.state = 'SUBMITTED' OR (l.state = 'LEASED' AND l.expires_at > now())) THEN 'IN_PROGRESS' ELSE 'PENDING' END`;

/** Hand-out order per routing (item alias `i`); the item ordinal breaks ties so the order is total. */
const ROUTING_ORDER: Record<AnnotationRouting, string> = {
  RANDOM: 'i.random_key, i.ordinal',
  ORDERED: 'i.ordinal',
  VALUE: 'i.priority DESC, i.ordinal',
};

/** A number in [0, 1) from a hash of the campaign and the item's position: a shuffle seeded by the campaign id. */
function randomKey(campaignId: string, ordinal: number): number {
  return crypto.createHash('sha256').update(`${campaignId}:${ordinal}`).digest().readUIntBE(0, 6) / 2 ** 48;
}

/**
 * Clinician annotation campaigns (issue 12): frozen items handed out with leases, versioned
 * submissions written as CLINICIAN preferences linked to the campaign, progress, and promotion of
 * accepted candidates to demonstrations. Every read and write is scoped to the caller's project.
 */
export class AnnotationService {
  constructor(
    private readonly ds: DataSource,
    private readonly candidates: CandidatesService,
    private readonly preferences: PreferencesService,
    private readonly demonstrations: DemonstrationsService,
    private readonly datasets: DatasetsService,
    private readonly runs: RunsService,
    private readonly projects: ProjectsService,
    readonly events: AnnotationEvents,
    private readonly webhooks?: Pick<WebhooksService, 'campaignCompleted'>,
  ) {}

  // ---------------------------------------------------------------- campaigns

  async createCampaign(ctx: RequestContext, input: CreateAnnotationCampaignInput): Promise<AnnotationCampaign> {
    ctx.assertRole(Role.CURATOR);
    const name = input.name.trim();
    if (!name) throw invalid('Give the campaign a name', ['input', 'name']);
    const annotatorIds = await this.checkAnnotators(ctx, input.annotatorIds);
    if (annotatorIds && input.overlap > annotatorIds.length) {
      throw invalid(`An overlap of ${input.overlap} needs at least ${input.overlap} annotators; ${annotatorIds.length} are named`, ['input', 'overlap']);
    }
    const { briefs, source } = await this.itemCandidates(ctx, input);
    const plan = this.planItems(input.taskKind, briefs);

    const campaign = await this.ds.transaction(async (em) => {
      const repo = em.getRepository(AnnotationCampaign);
      const saved = await repo.save(
        repo.create({
          projectId: ctx.projectId,
          name,
          guidelines: input.guidelines?.trim() || null,
          taskKind: input.taskKind,
          overlap: input.overlap,
          annotatorIds,
          leaseSeconds: input.leaseSeconds,
          blind: input.blind,
          routing: input.routing,
          itemSource: source,
          itemCount: plan.length,
          createdById: ctx.userId,
        }),
      );
      const values = input.routing === AnnotationRouting.VALUE ? await annotationValues(em, ctx.projectId, [...new Set(plan.map((p) => p.candidateId))]) : new Map<string, number>();
      const rows = plan.map((p, ordinal) => ({
        projectId: ctx.projectId,
        campaignId: saved.id,
        candidateId: p.candidateId,
        otherCandidateId: p.otherCandidateId,
        roundIndex: p.roundIndex,
        ordinal,
        randomKey: randomKey(saved.id, ordinal),
        priority: values.get(p.candidateId) ?? 0,
      }));
      for (let start = 0; start < rows.length; start += INSERT_CHUNK) {
        await em.createQueryBuilder().insert().into(AnnotationItem).values(rows.slice(start, start + INSERT_CHUNK)).execute();
      }
      // `overlap` slots per item: the only way to hold an item is to hold one of its slots.
      await em.query(
        `INSERT INTO annotation_leases (project_id, campaign_id, item_id, slot)
         SELECT i.project_id, i.campaign_id, i.id, s FROM annotation_items i CROSS JOIN generate_series(0, $2::int - 1) s WHERE i.campaign_id = $1`,
        [saved.id, input.overlap],
      );
      await this.rankSlots(em, saved);
      return saved;
    });
    await this.events.changed(campaign.id);
    return campaign;
  }

  /** Named annotators must be members who may annotate; an empty list is a mistake (null means every clinician). */
  private async checkAnnotators(ctx: RequestContext, globalIds: string[] | null | undefined): Promise<string[] | null> {
    if (globalIds == null) return null;
    if (globalIds.length === 0) throw invalid('Name at least one annotator, or give null for every CLINICIAN member', ['input', 'annotatorIds']);
    const ids = [...new Set(globalIds.map((id) => expectGlobalId(id, 'User', 'input.annotatorIds')))];
    const members = new Map((await this.projects.memberRoles(ctx, ids)).map((m) => [m.userId, m.role]));
    const unknown = ids.filter((id) => !members.has(id));
    if (unknown.length) throw missing(`${unknown.length} of the annotators`, ['input', 'annotatorIds']);
    const readers = ids.filter((id) => !roleAtLeast(members.get(id)!, Role.CLINICIAN));
    if (readers.length) throw invalid(`${readers.length} of the annotators are VIEWER members, who cannot annotate`, ['input', 'annotatorIds']);
    return ids;
  }

  /** The candidates of exactly one source, frozen now, in the source's order. */
  private async itemCandidates(ctx: RequestContext, input: CreateAnnotationCampaignInput): Promise<{ briefs: CandidateBrief[]; source: AnnotationItemSource }> {
    const items = input.items;
    const given = [items.candidateFilter, items.generationRunId, items.datasetId].filter((v) => v != null).length;
    if (given !== 1) throw invalid('Give exactly one of candidateFilter, generationRunId or datasetId', ['input', 'items']);
    const limit = MAX_CAMPAIGN_ITEMS + 1;
    let briefs: CandidateBrief[];
    if (items.datasetId) {
      const ids = await this.datasets.candidateIdsInRank(ctx, expectGlobalId(items.datasetId, 'Dataset', 'input.items.datasetId'), limit);
      if (!ids) throw missing('Dataset', ['input', 'items', 'datasetId']);
      briefs = await this.candidates.briefs(ctx, { ids }, limit);
    } else if (items.generationRunId) {
      await this.runs.assertRunsOfKind(ctx, [items.generationRunId], RunKind.GENERATION, ['input', 'items', 'generationRunId']);
      briefs = await this.candidates.briefs(ctx, { filter: { runId: items.generationRunId }, byImageAndSample: true }, limit);
    } else {
      briefs = await this.candidates.briefs(ctx, { filter: items.candidateFilter }, limit);
    }
    if (briefs.length > MAX_CAMPAIGN_ITEMS) {
      throw new UserErrorsException([userError(UserErrorCode.TOO_LARGE, `The items select more than ${MAX_CAMPAIGN_ITEMS} candidates; narrow them`, ['input', 'items'])]);
    }
    if (briefs.length === 0) throw invalid('The items select no OK candidate', ['input', 'items']);
    const source: AnnotationItemSource = items.datasetId
      ? { datasetId: items.datasetId }
      : items.generationRunId
        ? { generationRunId: items.generationRunId }
        : { candidateFilter: JSON.parse(JSON.stringify(items.candidateFilter)) as Record<string, unknown> };
    return { briefs, source };
  }

  /**
   * What each item judges. ACCEPTANCE and RATING: one two-answer candidate. PAIRWISE: each round of
   * a two-answer candidate (A vs B), and single-answer candidates paired with the next one of the
   * same image (in source order); a single-answer candidate left without a partner is left out.
   */
  private planItems(kind: AnnotationTaskKind, briefs: CandidateBrief[]): { candidateId: string; otherCandidateId: string | null; roundIndex: number | null }[] {
    const twoAnswers = (b: CandidateBrief) => b.form === CandidateForm.TWO_ANSWERS && b.roundAnswers.length > 0 && b.roundAnswers.every((n) => n === 2);
    if (kind !== AnnotationTaskKind.PAIRWISE) {
      const single = briefs.filter((b) => !twoAnswers(b)).length;
      if (single) throw invalid(`${single} of the ${briefs.length} candidates do not have two answers to every question; ${kind} needs two-answer candidates`, ['input', 'items']);
      return briefs.map((b) => ({ candidateId: b.id, otherCandidateId: null, roundIndex: null }));
    }
    const plan: { candidateId: string; otherCandidateId: string | null; roundIndex: number | null }[] = [];
    const waiting = new Map<string, CandidateBrief>();
    for (const b of briefs) {
      if (twoAnswers(b)) {
        b.roundAnswers.forEach((_n, roundIndex) => plan.push({ candidateId: b.id, otherCandidateId: null, roundIndex }));
        continue;
      }
      const partner = waiting.get(b.imageId);
      if (partner) {
        waiting.delete(b.imageId);
        plan.push({ candidateId: partner.id, otherCandidateId: b.id, roundIndex: null });
      } else {
        waiting.set(b.imageId, b);
      }
    }
    if (plan.length === 0) throw invalid('PAIRWISE needs two-answer candidates or at least two candidates of one image', ['input', 'items']);
    if (plan.length > MAX_CAMPAIGN_ITEMS) throw new UserErrorsException([userError(UserErrorCode.TOO_LARGE, `The candidates give ${plan.length} PAIRWISE items, more than ${MAX_CAMPAIGN_ITEMS}`, ['input', 'items'])]);
    return plan;
  }

  /**
   * Writes each item's place in the hand-out order on its slots. Done at creation; call it again
   * after changing item priorities (VALUE routing) so that the next leases follow them.
   */
  async rerank(ctx: RequestContext, campaignId: string): Promise<void> {
    ctx.assertRole(Role.CURATOR);
    const campaign = await this.findCampaign(ctx, campaignId);
    if (!campaign) throw missing('Campaign', ['campaignId']);
    await this.ds.transaction((em) => this.rankSlots(em, campaign));
  }

  private async rankSlots(em: EntityManager, campaign: AnnotationCampaign): Promise<void> {
    await em.query(
      `UPDATE annotation_leases l SET hand_out_rank = r.rank FROM (
         SELECT i.id, row_number() OVER (ORDER BY ${ROUTING_ORDER[campaign.routing]})::int AS rank FROM annotation_items i WHERE i.campaign_id = $1) r
        WHERE l.item_id = r.id AND l.campaign_id = $1 AND l.hand_out_rank IS DISTINCT FROM r.rank`,
      [campaign.id],
    );
  }

  async listCampaigns(ctx: RequestContext, page: PageArgs): Promise<ConnectionShape<AnnotationCampaign>> {
    const base = () => this.ds.getRepository(AnnotationCampaign).createQueryBuilder('c').where('c.projectId = :p', { p: ctx.projectId });
    const rows = await applyKeyset(base(), { sortExpr: 'c.createdAt', idExpr: 'c.id', direction: SortDirection.DESC }, page).getMany();
    return toConnection(rows, page, (c) => ({ value: c.createdAt, id: c.id }), () => base().getCount());
  }

  async findCampaign(ctx: RequestContext, id: string): Promise<AnnotationCampaign | null> {
    return this.ds.getRepository(AnnotationCampaign).findOneBy({ id, projectId: ctx.projectId });
  }

  async campaignsByIds(ctx: RequestContext, ids: readonly string[]): Promise<AnnotationCampaign[]> {
    if (ids.length === 0) return [];
    return this.ds.getRepository(AnnotationCampaign).createQueryBuilder('c').where('c.projectId = :p AND c.id = ANY(:ids::uuid[])', { p: ctx.projectId, ids: [...ids] }).getMany();
  }

  async findItem(ctx: RequestContext, id: string): Promise<AnnotationItem | null> {
    return this.ds.getRepository(AnnotationItem).findOneBy({ id, projectId: ctx.projectId });
  }

  async itemsByIds(ctx: RequestContext, ids: readonly string[]): Promise<AnnotationItem[]> {
    if (ids.length === 0) return [];
    return this.ds.getRepository(AnnotationItem).createQueryBuilder('i').where('i.projectId = :p AND i.id = ANY(:ids::uuid[])', { p: ctx.projectId, ids: [...ids] }).getMany();
  }

  /** A campaign's items in their source order, optionally of one status. */
  async items(ctx: RequestContext, campaignId: string, page: PageArgs, status?: AnnotationItemStatus | null): Promise<ConnectionShape<AnnotationItem>> {
    const base = () => {
      const qb = this.ds.getRepository(AnnotationItem).createQueryBuilder('i').where('i.projectId = :p AND i.campaignId = :c', { p: ctx.projectId, c: campaignId });
      if (status) qb.andWhere(`(SELECT ${STATUS_OF_SLOTS} FROM annotation_leases l WHERE l.item_id = i.id) = :status`, { status });
      return qb;
    };
    const rows = await applyKeyset(base(), { sortExpr: 'i.ordinal', idExpr: 'i.id', direction: SortDirection.ASC, kind: 'number' }, page).getMany();
    return toConnection(rows, page, (i) => ({ value: i.ordinal, id: i.id }), () => base().getCount());
  }

  /** Status and submission count of each item, in one statement. */
  async itemStats(ctx: RequestContext, itemIds: readonly string[]): Promise<ItemStats[]> {
    const rows: { item_id: string; status: AnnotationItemStatus; submitted: number }[] = await this.ds.query(
      `SELECT l.item_id, ${STATUS_OF_SLOTS} AS status, count(*) FILTER (WHERE l.state = 'SUBMITTED')::int AS submitted
         FROM annotation_leases l WHERE l.project_id = $1 AND l.item_id = ANY($2::uuid[]) GROUP BY l.item_id`,
      [ctx.projectId, [...itemIds]],
    );
    const byId = new Map(rows.map((r) => [r.item_id, { status: r.status, submittedCount: r.submitted }]));
    return itemIds.map((id) => byId.get(id) ?? { status: AnnotationItemStatus.PENDING, submittedCount: 0 });
  }

  /** Items per status of each campaign, in one statement. */
  async itemCounts(ctx: RequestContext, campaignIds: readonly string[]): Promise<ItemCounts[]> {
    const rows: { campaign_id: string; status: AnnotationItemStatus; n: number }[] = await this.ds.query(
      `SELECT campaign_id, status, count(*)::int AS n FROM (
         SELECT l.campaign_id, ${STATUS_OF_SLOTS} AS status FROM annotation_leases l
          WHERE l.project_id = $1 AND l.campaign_id = ANY($2::uuid[]) GROUP BY l.campaign_id, l.item_id) per_item
       GROUP BY campaign_id, status`,
      [ctx.projectId, [...campaignIds]],
    );
    return campaignIds.map((id) => {
      const counts: ItemCounts = { pending: 0, inProgress: 0, completed: 0, total: 0 };
      for (const r of rows.filter((row) => row.campaign_id === id)) {
        if (r.status === AnnotationItemStatus.PENDING) counts.pending = r.n;
        if (r.status === AnnotationItemStatus.IN_PROGRESS) counts.inProgress = r.n;
        if (r.status === AnnotationItemStatus.COMPLETED) counts.completed = r.n;
        counts.total += r.n;
      }
      return counts;
    });
  }

  /**
   * Per clinician of each campaign: items submitted, skipped and leased now. The clinicians are the
   * named annotators (or every CLINICIAN member) and anyone else who worked on the campaign.
   */
  async progress(ctx: RequestContext, campaigns: readonly AnnotationCampaign[]): Promise<ProgressRow[][]> {
    if (campaigns.length === 0) return [];
    const ids = campaigns.map((c) => c.id);
    const rows: { campaign_id: string; annotator_id: string; submitted: number; skipped: number; in_progress: number }[] = await this.ds.query(
      `SELECT campaign_id, annotator_id, sum(submitted)::int AS submitted, sum(skipped)::int AS skipped, sum(in_progress)::int AS in_progress FROM (
         SELECT l.campaign_id, l.annotator_id, count(*) FILTER (WHERE l.state = 'SUBMITTED') AS submitted, 0 AS skipped,
                count(*) FILTER (WHERE l.state = 'LEASED' AND l.expires_at > now()) AS in_progress
           FROM annotation_leases l WHERE l.project_id = $1 AND l.campaign_id = ANY($2::uuid[]) AND l.annotator_id IS NOT NULL GROUP BY 1, 2
         UNION ALL
         SELECT k.campaign_id, k.annotator_id, 0, count(*), 0 FROM annotation_skips k WHERE k.project_id = $1 AND k.campaign_id = ANY($2::uuid[]) GROUP BY 1, 2
       ) t GROUP BY 1, 2`,
      [ctx.projectId, ids],
    );
    const needsClinicians = campaigns.some((c) => !c.annotatorIds);
    const clinicians = needsClinicians ? (await this.projects.memberRoles(ctx)).filter((m) => m.role === Role.CLINICIAN).map((m) => m.userId) : [];
    return campaigns.map((c) => {
      const own = rows.filter((r) => r.campaign_id === c.id);
      const people = [...new Set([...(c.annotatorIds ?? clinicians), ...own.map((r) => r.annotator_id)])];
      return people.map((annotatorId) => {
        const r = own.find((row) => row.annotator_id === annotatorId);
        return { annotatorId, submitted: r?.submitted ?? 0, skipped: r?.skipped ?? 0, inProgress: r?.in_progress ?? 0 };
      });
    });
  }

  // ---------------------------------------------------------------- leasing

  /** CLINICIAN or higher, and named in the campaign when it names its annotators. */
  private assertAnnotator(ctx: RequestContext, campaign: AnnotationCampaign): void {
    ctx.assertRole(Role.CLINICIAN);
    if (campaign.annotatorIds && !campaign.annotatorIds.includes(ctx.userId)) {
      throw new DomainError(ErrorCode.FORBIDDEN, 'You are not one of the annotators of this campaign');
    }
  }

  /**
   * One clinician's calls on one campaign run one at a time (a transaction-scoped advisory lock), so
   * two tabs asking at once get the same lease; other clinicians are not held up by it.
   */
  private async lockAnnotator(em: EntityManager, campaignId: string, userId: string): Promise<void> {
    await em.query(`SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, [`annotation:${campaignId}:${userId}`]);
  }

  /**
   * Leases one item to the calling clinician, or returns the unexpired lease they hold already;
   * null when nothing is left for them. The lease itself is ONE statement: it picks a slot that is
   * FREE or whose lease expired, of an item the caller has not submitted, skipped or leased, in
   * hand-out order (walking the index of unfilled slots from the front, so its cost does not grow
   * with the campaign), locks it with FOR UPDATE SKIP LOCKED and takes it. Under READ COMMITTED a slot
   * another transaction changed meanwhile is re-checked against its newest version before it is
   * taken, so concurrent clinicians can never take the same slot, and an item never has more than
   * `overlap` (submitted + unexpired leases), because it has only `overlap` slots.
   */
  async nextTask(ctx: RequestContext, campaignId: string): Promise<LeasedTask | null> {
    const campaign = await this.findCampaign(ctx, campaignId);
    if (!campaign) throw missing('Campaign', ['input', 'campaignId']);
    this.assertAnnotator(ctx, campaign);
    const { leased, fresh } = await this.ds.transaction(async (em) => {
      await this.lockAnnotator(em, campaign.id, ctx.userId);
      const rows: { item_id: string; expires_at: Date; fresh: boolean }[] = await em.query(
        `WITH mine AS (
           SELECT l.item_id, l.expires_at, false AS fresh FROM annotation_leases l
            WHERE l.campaign_id = $1 AND l.annotator_id = $2 AND l.state = 'LEASED' AND l.expires_at > now()
            ORDER BY l.leased_at, l.id LIMIT 1),
         pick AS (
           SELECT l.id FROM annotation_leases l
            WHERE l.campaign_id = $1 AND NOT EXISTS (SELECT 1 FROM mine)
              AND l.state <> 'SUBMITTED' AND (l.state = 'FREE' OR l.expires_at <= now())
              AND NOT EXISTS (SELECT 1 FROM annotation_leases o WHERE o.item_id = l.item_id AND o.annotator_id = $2 AND o.id <> l.id)
              AND NOT EXISTS (SELECT 1 FROM annotation_skips k WHERE k.item_id = l.item_id AND k.annotator_id = $2)
            ORDER BY l.hand_out_rank, l.slot
            LIMIT 1
            FOR UPDATE OF l SKIP LOCKED),
         taken AS (
           UPDATE annotation_leases l SET state = 'LEASED', annotator_id = $2, leased_at = now(), expires_at = now() + make_interval(secs => $3), updated_at = now()
             FROM pick WHERE l.id = pick.id
           RETURNING l.item_id, l.expires_at, true AS fresh)
         SELECT * FROM mine UNION ALL SELECT * FROM taken`,
        [campaign.id, ctx.userId, campaign.leaseSeconds],
      );
      return { leased: rows[0] ?? null, fresh: rows[0]?.fresh ?? false };
    });
    if (!leased) return null;
    if (fresh) await this.events.changed(campaign.id);
    const item = await this.findItem(ctx, leased.item_id);
    return { campaign, item: item!, leaseExpiresAt: leased.expires_at };
  }

  /** Loads an item and its campaign for a clinician's action on it. */
  private async itemForAnnotator(ctx: RequestContext, itemGlobalId: string, field: string[]): Promise<{ item: AnnotationItem; campaign: AnnotationCampaign }> {
    const item = await this.findItem(ctx, expectGlobalId(itemGlobalId, 'AnnotationItem', field.join('.')));
    if (!item) throw missing('Item', field);
    const campaign = (await this.findCampaign(ctx, item.campaignId))!;
    this.assertAnnotator(ctx, campaign);
    return { item, campaign };
  }

  /** The caller's slot of an item, locked for the rest of the transaction; null when they hold none. */
  private async mySlot(em: EntityManager, ctx: RequestContext, itemId: string): Promise<{ id: string; state: AnnotationSlotState } | null> {
    const [slot]: { id: string; state: AnnotationSlotState }[] = await em.query(
      `SELECT id, state FROM annotation_leases WHERE item_id = $1 AND annotator_id = $2 AND project_id = $3 FOR UPDATE`,
      [itemId, ctx.userId, ctx.projectId],
    );
    return slot ?? null;
  }

  /**
   * Submits the caller's judgement of an item they lease, or a new version of their own earlier
   * submission. A lease that expired still counts while nobody else took the slot over. The
   * submission, the slot and the CLINICIAN preferences change in one transaction.
   */
  async submit(ctx: RequestContext, input: SubmitAnnotationInput): Promise<{ submission: AnnotationSubmission; item: AnnotationItem }> {
    const { item, campaign } = await this.itemForAnnotator(ctx, input.itemId, ['input', 'itemId']);
    const candidate = (await this.candidates.findById(ctx, item.candidateId))!;
    const payload = this.judgementsOf(campaign, item, candidate, input);
    let filledSlot = false;
    const submission = await this.ds.transaction(async (em) => {
      await this.lockAnnotator(em, campaign.id, ctx.userId);
      const slot = await this.mySlot(em, ctx, item.id);
      if (!slot) throw conflict('You hold no lease on this item (it expired and went to someone else, or was never yours): ask for the next task', ['input', 'itemId']);
      if (slot.state === AnnotationSlotState.LEASED) {
        filledSlot = true;
        await em.query(`UPDATE annotation_leases SET state = 'SUBMITTED', submitted_at = now(), updated_at = now() WHERE id = $1`, [slot.id]);
      }
      const earlier: { id: string; version: number }[] = await em.query(
        `SELECT id, version FROM annotation_submissions WHERE item_id = $1 AND annotator_id = $2 ORDER BY version`,
        [item.id, ctx.userId],
      );
      const repo = em.getRepository(AnnotationSubmission);
      const saved = await repo.save(
        repo.create({
          projectId: ctx.projectId,
          campaignId: campaign.id,
          itemId: item.id,
          annotatorId: ctx.userId,
          version: (earlier[earlier.length - 1]?.version ?? 0) + 1,
          comment: input.comment?.trim() || null,
          acceptance: payload.acceptance,
          choice: payload.choice,
          roundIndex: payload.roundIndex,
          ratings: payload.ratings,
        }),
      );
      await this.preferences.replaceCampaignJudgements(em, ctx, {
        campaignId: campaign.id,
        submissionId: saved.id,
        replacesSubmissionIds: earlier.map((e) => e.id),
        candidate,
        otherCandidateId: item.otherCandidateId,
        judgements: payload.judgements,
      });
      return saved;
    });
    if (filledSlot) await this.announceIfCompleted(campaign);
    await this.events.changed(campaign.id);
    return { submission, item };
  }

  /**
   * The `annotation.campaign.completed` webhook, once every slot of the campaign is submitted.
   * Checked after the submission committed, in a transaction of its own: of two clinicians filling
   * the last two slots at once, each checks after its own commit, so the later check sees both and
   * none is missed; the event key makes a second announcement a no-op. An edit fills no slot and
   * never checks.
   */
  private async announceIfCompleted(campaign: AnnotationCampaign): Promise<void> {
    if (!this.webhooks) return;
    await this.ds.transaction(async (em) => {
      const [state]: { open: number; items: number; submitted: number }[] = await em.query(
        `SELECT count(*) FILTER (WHERE state <> 'SUBMITTED')::int AS open, count(DISTINCT item_id)::int AS items, count(*) FILTER (WHERE state = 'SUBMITTED')::int AS submitted
         FROM annotation_leases WHERE campaign_id = $1`,
        [campaign.id],
      );
      if (state.open > 0 || state.items === 0) return;
      await this.webhooks!.campaignCompleted(em, { id: campaign.id, projectId: campaign.projectId, name: campaign.name, items: state.items, submissions: state.submitted });
    });
  }

  /** Gives a leased item back: the slot is free for others and the item never comes back to the caller. */
  async skip(ctx: RequestContext, itemGlobalId: string): Promise<AnnotationItem> {
    const { item, campaign } = await this.itemForAnnotator(ctx, itemGlobalId, ['input', 'itemId']);
    await this.ds.transaction(async (em) => {
      await this.lockAnnotator(em, campaign.id, ctx.userId);
      const slot = await this.mySlot(em, ctx, item.id);
      if (!slot) throw conflict('You hold no lease on this item', ['input', 'itemId']);
      if (slot.state === AnnotationSlotState.SUBMITTED) throw conflict('You submitted this item already; submit again to edit it', ['input', 'itemId']);
      await em.query(`UPDATE annotation_leases SET state = 'FREE', annotator_id = NULL, leased_at = NULL, expires_at = NULL, updated_at = now() WHERE id = $1`, [slot.id]);
      await em.query(
        `INSERT INTO annotation_skips (project_id, campaign_id, item_id, annotator_id) VALUES ($1, $2, $3, $4) ON CONFLICT (item_id, annotator_id) DO NOTHING`,
        [ctx.projectId, campaign.id, item.id, ctx.userId],
      );
    });
    await this.events.changed(campaign.id);
    return item;
  }

  /**
   * Checks a submission against the campaign's task kind and the candidate, and turns it into the
   * preferences it stands for. ACCEPTANCE and RATING cover every answer of every round, once.
   */
  private judgementsOf(
    campaign: AnnotationCampaign,
    item: AnnotationItem,
    candidate: Candidate,
    input: SubmitAnnotationInput,
  ): Pick<AnnotationSubmission, 'acceptance' | 'choice' | 'roundIndex' | 'ratings'> & { judgements: ClinicianJudgement[] } {
    const kind = campaign.taskKind;
    const fieldOf: Record<AnnotationTaskKind, 'acceptance' | 'pairwise' | 'ratings'> = { ACCEPTANCE: 'acceptance', PAIRWISE: 'pairwise', RATING: 'ratings' };
    for (const [k, field] of Object.entries(fieldOf)) {
      const given = input[field] != null;
      if (k === kind && !given) throw invalid(`A ${kind} campaign needs ${field}`, ['input', field]);
      if (k !== kind && given) throw invalid(`A ${kind} campaign takes ${fieldOf[kind]}, not ${field}`, ['input', field]);
    }
    const comment = input.comment?.trim() || null;
    const coverage = (answers: { roundIndex: number; answerIndex: number }[], field: string) => {
      const expected = candidate.rounds.length * 2;
      const seen = new Set<string>();
      for (const a of answers) {
        if (a.roundIndex >= candidate.rounds.length) throw invalid(`The candidate has ${candidate.rounds.length} rounds`, ['input', field]);
        const key = `${a.roundIndex}:${a.answerIndex}`;
        if (seen.has(key)) throw invalid(`Round ${a.roundIndex} answer ${a.answerIndex} is given twice`, ['input', field]);
        seen.add(key);
      }
      if (seen.size !== expected) throw invalid(`Judge every answer of every round: ${expected} answers, ${seen.size} given`, ['input', field]);
    };
    const byPosition = <T extends { roundIndex: number; answerIndex: number }>(rows: T[]) => [...rows].sort((a, b) => a.roundIndex - b.roundIndex || a.answerIndex - b.answerIndex);
    switch (kind) {
      case AnnotationTaskKind.ACCEPTANCE: {
        const acceptance = byPosition(input.acceptance!.map((a) => ({ roundIndex: a.roundIndex, answerIndex: a.answerIndex, accepted: a.accepted })));
        coverage(acceptance, 'acceptance');
        return {
          acceptance,
          choice: null,
          roundIndex: null,
          ratings: null,
          judgements: acceptance.map((a) => ({ kind: PreferenceKind.ACCEPTANCE, roundIndex: a.roundIndex, answerIndex: a.answerIndex, accepted: a.accepted, rationale: comment })),
        };
      }
      case AnnotationTaskKind.RATING: {
        const ratings = byPosition(input.ratings!.map((r) => ({ roundIndex: r.roundIndex, answerIndex: r.answerIndex, rating: r.rating })));
        coverage(ratings, 'ratings');
        return {
          acceptance: null,
          choice: null,
          roundIndex: null,
          ratings,
          judgements: ratings.map((r) => ({ kind: PreferenceKind.RATING, roundIndex: r.roundIndex, answerIndex: r.answerIndex, rating: r.rating, rubricVersion: CAMPAIGN_RUBRIC, rationale: comment })),
        };
      }
      case AnnotationTaskKind.PAIRWISE: {
        const pairwise = input.pairwise!;
        if (item.roundIndex == null && pairwise.roundIndex != null) throw invalid('This item compares two candidates as a whole: give no roundIndex', ['input', 'pairwise', 'roundIndex']);
        if (item.roundIndex != null && pairwise.roundIndex != null && pairwise.roundIndex !== item.roundIndex) {
          throw invalid(`This item is round ${item.roundIndex}`, ['input', 'pairwise', 'roundIndex']);
        }
        return {
          acceptance: null,
          choice: pairwise.choice,
          roundIndex: item.roundIndex,
          ratings: null,
          judgements: [{ kind: PreferenceKind.PAIRWISE, roundIndex: item.roundIndex, choice: pairwise.choice, rationale: comment }],
        };
      }
    }
  }

  // ---------------------------------------------------------------- submissions

  /**
   * Submissions of each item, oldest first: every version, or only each clinician's latest. A
   * CLINICIAN of a blind campaign sees only their own; curators and viewers see all.
   */
  async submissionsOfItems(ctx: RequestContext, itemIds: readonly string[], latestOnly: boolean, onlyAnnotatorId: string | null): Promise<AnnotationSubmission[]> {
    if (itemIds.length === 0) return [];
    const qb = this.ds.getRepository(AnnotationSubmission).createQueryBuilder('s').where('s.projectId = :p AND s.itemId = ANY(:ids::uuid[])', { p: ctx.projectId, ids: [...itemIds] });
    if (onlyAnnotatorId) qb.andWhere('s.annotatorId = :me', { me: onlyAnnotatorId });
    if (latestOnly) qb.andWhere('s.version = (SELECT max(v.version) FROM annotation_submissions v WHERE v.item_id = s.item_id AND v.annotator_id = s.annotator_id)');
    return qb.orderBy('s.createdAt', 'ASC').addOrderBy('s.id', 'ASC').getMany();
  }

  async findSubmission(ctx: RequestContext, id: string): Promise<AnnotationSubmission | null> {
    const submission = await this.ds.getRepository(AnnotationSubmission).findOneBy({ id, projectId: ctx.projectId });
    if (!submission || submission.annotatorId === ctx.userId || ctx.role !== Role.CLINICIAN) return submission;
    // Blind campaigns hide other clinicians' submissions from clinicians, by id too.
    const campaign = await this.findCampaign(ctx, submission.campaignId);
    return campaign?.blind ? null : submission;
  }

  // ---------------------------------------------------------------- promotion

  async promotionsOfDemonstrations(ctx: RequestContext, demonstrationIds: readonly string[]): Promise<AnnotationPromotion[]> {
    if (demonstrationIds.length === 0) return [];
    return this.ds
      .getRepository(AnnotationPromotion)
      .createQueryBuilder('p')
      .where('p.projectId = :p AND p.demonstrationId = ANY(:ids::uuid[])', { p: ctx.projectId, ids: [...demonstrationIds] })
      .orderBy('p.createdAt', 'ASC')
      .getMany();
  }

  /**
   * Makes the conversation the clinicians accepted an active demonstration, with provenance: the
   * campaign, the latest submission of each clinician, and the preferences they wrote. ACCEPTANCE:
   * each round keeps the answer a majority of clinicians accepted (the one more accepted; A on a tie),
   * and every round needs one. RATING: each round keeps the better-rated answer, which needs a mean
   * of 5 or more. PAIRWISE of two candidates: the candidate a majority chose. Promoting an item again
   * returns the same demonstration.
   */
  async promote(ctx: RequestContext, itemGlobalId: string): Promise<{ demonstration: Demonstration; promotion: AnnotationPromotion }> {
    ctx.assertRole(Role.CURATOR);
    const item = await this.findItem(ctx, expectGlobalId(itemGlobalId, 'AnnotationItem', 'input.itemId'));
    if (!item) throw missing('Item', ['input', 'itemId']);
    const campaign = (await this.findCampaign(ctx, item.campaignId))!;
    const latest = await this.submissionsOfItems(ctx, [item.id], true, null);
    if (latest.length === 0) throw conflict('Nobody has submitted this item yet', ['input', 'itemId']);
    const candidate = (await this.candidates.findById(ctx, item.candidateId))!;
    const { source, turns } = await this.promotedConversation(ctx, campaign, item, candidate, latest);

    const result = await this.ds.transaction(async (em) => {
      // Lock the item's promotion slot (one per item) so two curators promoting at once make one demonstration.
      await em.query(`SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, [`annotation-promotion:${item.id}`]);
      const repo = em.getRepository(AnnotationPromotion);
      const existing = await repo.findOneBy({ itemId: item.id, projectId: ctx.projectId });
      // A promotion's demonstration cannot be gone: deleting it deletes the promotion (foreign key).
      if (existing) return { demonstration: (await this.demonstrations.findById(ctx, existing.demonstrationId))!, promotion: existing };
      const demonstration = await this.demonstrations.promoteConversation(em, ctx, { imageId: source.imageId, turns, sourceCandidateId: source.id });
      const submissionIds = latest.map((s) => s.id);
      const preferenceIds = await this.preferences.idsOfSubmissions(em, ctx, submissionIds);
      const promotion = await repo.save(
        repo.create({ projectId: ctx.projectId, campaignId: campaign.id, itemId: item.id, demonstrationId: demonstration.id, submissionIds, preferenceIds, promotedById: ctx.userId }),
      );
      return { demonstration, promotion };
    });
    await this.events.changed(campaign.id);
    return result;
  }

  private async promotedConversation(
    ctx: RequestContext,
    campaign: AnnotationCampaign,
    item: AnnotationItem,
    candidate: Candidate,
    latest: AnnotationSubmission[],
  ): Promise<{ source: Candidate; turns: ConversationTurn[] }> {
    const field = ['input', 'itemId'];
    const conversation = (c: Candidate, chosen: number[]) => c.rounds.flatMap((r, i) => [{ from: Speaker.HUMAN, value: r.question }, { from: Speaker.GPT, value: r.answers[chosen[i]] ?? '' }]);
    switch (campaign.taskKind) {
      case AnnotationTaskKind.ACCEPTANCE: {
        const chosen = candidate.rounds.map((_r, roundIndex) => {
          const votes = [0, 1].map((answerIndex) => latest.filter((s) => s.acceptance?.some((a) => a.roundIndex === roundIndex && a.answerIndex === answerIndex && a.accepted)).length);
          const best = votes[1] > votes[0] ? 1 : 0;
          if (votes[best] * 2 <= latest.length) throw conflict(`No answer of round ${roundIndex} was accepted by a majority of the ${latest.length} clinicians`, field);
          return best;
        });
        return { source: candidate, turns: conversation(candidate, chosen) };
      }
      case AnnotationTaskKind.RATING: {
        const chosen = candidate.rounds.map((_r, roundIndex) => {
          const mean = [0, 1].map((answerIndex) => {
            const values = latest.flatMap((s) => s.ratings?.filter((r) => r.roundIndex === roundIndex && r.answerIndex === answerIndex).map((r) => r.rating) ?? []);
            return values.length ? values.reduce((a, b) => a + b, 0) / values.length : 0;
          });
          const best = mean[1] > mean[0] ? 1 : 0;
          if (mean[best] < 5) throw conflict(`No answer of round ${roundIndex} has a mean rating of 5 or more`, field);
          return best;
        });
        return { source: candidate, turns: conversation(candidate, chosen) };
      }
      case AnnotationTaskKind.PAIRWISE: {
        if (!item.otherCandidateId) throw invalid('A PAIRWISE item of one round does not make a conversation: promote from an ACCEPTANCE or RATING campaign', field);
        const a = latest.filter((s) => s.choice === PairwiseChoice.A).length;
        const b = latest.filter((s) => s.choice === PairwiseChoice.B).length;
        if (Math.max(a, b) * 2 <= latest.length) throw conflict(`No candidate was chosen by a majority of the ${latest.length} clinicians`, field);
        const winner = a > b ? candidate : (await this.candidates.findById(ctx, item.otherCandidateId))!;
        return { source: winner, turns: conversation(winner, winner.rounds.map(() => 0)) };
      }
    }
  }
}
