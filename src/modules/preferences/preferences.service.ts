import { DataSource, EntityManager, InsertQueryBuilder } from 'typeorm';
import { RequestContext } from '../projects/request-context';
import { badInput, DomainError, ErrorCode } from '../../platform/errors';
import { expectGlobalId } from '../../platform/ids';
import { applyKeyset, childPages, countChildren, ConnectionShape, decodeCursor, PageArgs, SortDirection, toConnection } from '../../platform/pagination';
import { Role } from '../projects/role';
import { PlainRows } from '../../platform/plain-rows';
import { Candidate, CandidateForm } from '../candidates/candidate.entity';
import { CandidatesService } from '../candidates/candidates.service';
import { Preference, PreferenceKind, PreferenceSource } from './preference.entity';
import { PreferenceFilter, RecordPreferenceInput } from './preferences.inputs';

/**
 * Clinicians do not read other clinicians' annotation-campaign judgements through the preference
 * API: a campaign may be blind (later annotators must not see earlier answers), and whether it is
 * is the campaign's business; open campaigns show them through AnnotationItem.submissions.
 * Curators, owners and viewers see every row.
 */
function hidesOthersCampaignJudgements(ctx: RequestContext): boolean {
  return ctx.role === Role.CLINICIAN;
}

/** A clinician judgement of a candidate already looked up: recordPreference's input without the ids. */
export type ClinicianJudgement = Omit<RecordPreferenceInput, 'candidateId' | 'otherCandidateId'>;

/** One preference as training reads it (the fields of training's PreferenceRecord, before images are joined). */
export interface TrainingPreferenceRow {
  id: string;
  createdAt: Date;
  source: PreferenceSource;
  kind: PreferenceKind;
  candidateId: string;
  annotatorId: string | null;
  judgeModel: string | null;
  roundIndex: number | null;
  answerIndex: number | null;
  otherCandidateId: string | null;
  choice: 'A' | 'B' | 'TIE' | null;
  rating: number | null;
  accepted: boolean | null;
}

export class PreferencesService {
  constructor(
    private readonly ds: DataSource,
    private readonly candidates: CandidatesService,
  ) {}

  async list(ctx: RequestContext, page: PageArgs, filter?: PreferenceFilter | null): Promise<ConnectionShape<Preference>> {
    const base = () => {
      const qb = this.ds.getRepository(Preference).createQueryBuilder('p').where('p.projectId = :projectId', { projectId: ctx.projectId });
      if (hidesOthersCampaignJudgements(ctx)) qb.andWhere('(p.campaignId IS NULL OR p.annotatorId = :me)', { me: ctx.userId });
      if (filter?.sources?.length) qb.andWhere('p.source IN (:...sources)', { sources: filter.sources });
      if (filter?.kinds?.length) qb.andWhere('p.kind IN (:...kinds)', { kinds: filter.kinds });
      if (filter?.annotatorId) qb.andWhere('p.annotatorId = :annotatorId', { annotatorId: expectGlobalId(filter.annotatorId, 'User', 'filter.annotatorId') });
      if (filter?.candidateId) qb.andWhere('p.candidateId = :candidateId', { candidateId: expectGlobalId(filter.candidateId, 'Candidate', 'filter.candidateId') });
      return qb;
    };
    const rows = await PlainRows.of(this.ds, Preference).getMany(applyKeyset(base(), { sortExpr: 'p.createdAt', idExpr: 'p.id', direction: SortDirection.DESC }, page));
    return toConnection(rows, page, (p) => ({ value: p.createdAt, id: p.id }), () => base().getCount());
  }

  async findById(ctx: RequestContext, id: string): Promise<Preference | null> {
    const preference = await this.ds.getRepository(Preference).findOneBy({ id, projectId: ctx.projectId });
    return preference && hidesOthersCampaignJudgements(ctx) && preference.campaignId && preference.annotatorId !== ctx.userId ? null : preference;
  }

  async findByIds(ctx: RequestContext, ids: readonly string[]): Promise<Preference[]> {
    if (ids.length === 0) return [];
    const qb = this.ds.getRepository(Preference).createQueryBuilder('p').where('p.projectId = :p AND p.id = ANY(:ids::uuid[])', { p: ctx.projectId, ids: [...ids] });
    if (hidesOthersCampaignJudgements(ctx)) qb.andWhere('(p.campaignId IS NULL OR p.annotatorId = :me)', { me: ctx.userId });
    return qb.orderBy('p.createdAt').addOrderBy('p.id').getMany();
  }

  async pagesByCandidate(ctx: RequestContext, candidateIds: readonly string[], page: PageArgs): Promise<Preference[]> {
    if (!hidesOthersCampaignJudgements(ctx)) {
      return childPages(this.ds.getRepository(Preference), { table: 'preferences', parentColumn: 'candidate_id', projectId: ctx.projectId, parentIds: candidateIds, page });
    }
    // childPages' window, less other clinicians' campaign judgements.
    const params: Record<string, unknown> = { p: ctx.projectId, ids: [...candidateIds], me: ctx.userId, limit: page.first + 1 };
    let cursor = '';
    if (page.after) {
      const { value, id } = decodeCursor(page.after, 'time');
      Object.assign(params, { cv: value, cid: id });
      cursor = 'AND (created_at, id) < (:cv, :cid)';
    }
    return this.ds
      .getRepository(Preference)
      .createQueryBuilder('child')
      .where(
        `child.id IN (SELECT ranked.id FROM (
           SELECT id, row_number() OVER (PARTITION BY candidate_id ORDER BY created_at DESC, id DESC) AS rn FROM preferences
            WHERE project_id = :p AND candidate_id = ANY(:ids::uuid[]) AND (campaign_id IS NULL OR annotator_id = :me) ${cursor}) ranked WHERE ranked.rn <= :limit)`,
        params,
      )
      .orderBy('child.createdAt', 'DESC')
      .addOrderBy('child.id', 'DESC')
      .getMany();
  }

  async countsByCandidate(ctx: RequestContext, candidateIds: readonly string[]): Promise<number[]> {
    if (!hidesOthersCampaignJudgements(ctx)) return countChildren(this.ds, { table: 'preferences', parentColumn: 'candidate_id', projectId: ctx.projectId, parentIds: candidateIds });
    const rows: { key: string; count: number }[] = await this.ds.query(
      `SELECT candidate_id AS key, count(*)::int AS count FROM preferences
        WHERE project_id = $1 AND candidate_id = ANY($2::uuid[]) AND (campaign_id IS NULL OR annotator_id = $3) GROUP BY candidate_id`,
      [ctx.projectId, [...candidateIds], ctx.userId],
    );
    const counts = new Map(rows.map((r) => [r.key, r.count]));
    return candidateIds.map((id) => counts.get(id) ?? 0);
  }

  /** A clinician's preference, checked against the candidate it judges. */
  async recordClinicianPreference(ctx: RequestContext, input: RecordPreferenceInput): Promise<Preference> {
    const candidate = await this.requireCandidate(ctx, input.candidateId, 'candidateId');
    const otherCandidateId = input.otherCandidateId ? (await this.requireCandidate(ctx, input.otherCandidateId, 'otherCandidateId')).id : null;
    this.checkShape(input, candidate, otherCandidateId);
    const repo = this.ds.getRepository(Preference);
    return repo.save(repo.create(this.clinicianRow(ctx, input, candidate.id, otherCandidateId)));
  }

  /**
   * The CLINICIAN rows of one annotation submission (issue 12), checked as recordPreference checks
   * them, inside the caller's transaction. They replace the rows the same clinician's earlier versions
   * of that submission wrote: history stays in the submissions, the preferences hold only the latest.
   */
  async replaceCampaignJudgements(
    em: EntityManager,
    ctx: RequestContext,
    write: { campaignId: string; submissionId: string; replacesSubmissionIds: string[]; candidate: Candidate; otherCandidateId: string | null; judgements: ClinicianJudgement[] },
  ): Promise<Preference[]> {
    for (const judgement of write.judgements) this.checkShape(judgement, write.candidate, write.otherCandidateId);
    if (write.replacesSubmissionIds.length) {
      await em
        .createQueryBuilder()
        .delete()
        .from(Preference)
        .where('project_id = :p AND campaign_id = :c AND annotator_id = :a AND annotation_submission_id = ANY(:ids::uuid[])', { p: ctx.projectId, c: write.campaignId, a: ctx.userId, ids: write.replacesSubmissionIds })
        .execute();
    }
    if (write.judgements.length === 0) return [];
    const repo = em.getRepository(Preference);
    const rows = write.judgements.map((j) =>
      repo.create({ ...this.clinicianRow(ctx, j, write.candidate.id, write.otherCandidateId), campaignId: write.campaignId, annotationSubmissionId: write.submissionId }),
    );
    return repo.save(rows);
  }

  /** The ids of the preferences these annotation submissions wrote (what a promotion cites as its provenance). */
  async idsOfSubmissions(em: EntityManager, ctx: RequestContext, submissionIds: string[]): Promise<string[]> {
    if (submissionIds.length === 0) return [];
    const rows: { id: string }[] = await em.query(`SELECT id FROM preferences WHERE project_id = $1 AND annotation_submission_id = ANY($2::uuid[]) ORDER BY created_at, id`, [ctx.projectId, submissionIds]);
    return rows.map((r) => r.id);
  }

  private clinicianRow(ctx: RequestContext, input: ClinicianJudgement, candidateId: string, otherCandidateId: string | null): Partial<Preference> {
    return {
      projectId: ctx.projectId,
      candidateId,
      source: PreferenceSource.CLINICIAN,
      kind: input.kind,
      annotatorId: ctx.userId,
      judgeModel: null,
      runId: null,
      roundIndex: input.roundIndex ?? null,
      otherCandidateId,
      choice: input.kind === PreferenceKind.PAIRWISE ? input.choice! : null,
      rating: input.kind === PreferenceKind.RATING ? input.rating! : null,
      rubricVersion: input.rubricVersion ?? null,
      rationale: input.rationale ?? null,
      answerIndex: input.answerIndex ?? null,
      accepted: input.kind === PreferenceKind.ACCEPTANCE ? input.accepted! : null,
    };
  }

  private async requireCandidate(ctx: RequestContext, globalId: string, field: string): Promise<Candidate> {
    const candidate = await this.candidates.findById(ctx, expectGlobalId(globalId, 'Candidate', field));
    if (!candidate) throw new DomainError(ErrorCode.NOT_FOUND, 'Candidate not found', field);
    return candidate;
  }

  private checkShape(input: ClinicianJudgement, candidate: Candidate, otherCandidateId: string | null): void {
    if (input.roundIndex != null && input.roundIndex >= candidate.rounds.length) {
      throw badInput(`The candidate has ${candidate.rounds.length} rounds`, 'roundIndex');
    }
    const twoAnswerRound = () => {
      if (input.roundIndex == null) throw badInput('roundIndex is required to judge the answers of a round', 'roundIndex');
      if (candidate.form !== CandidateForm.TWO_ANSWERS) throw badInput('The candidate has one answer per question', 'candidateId');
    };
    switch (input.kind) {
      case PreferenceKind.PAIRWISE:
        // `choice` says which answer won; an answer index would be a second, possibly contradicting, say.
        if (input.answerIndex != null) throw badInput('PAIRWISE judges both answers: give choice, not answerIndex', 'answerIndex');
        if (!input.choice) throw badInput('PAIRWISE needs choice', 'choice');
        if (otherCandidateId === candidate.id) throw badInput('A candidate cannot be compared with itself', 'otherCandidateId');
        if (!otherCandidateId) twoAnswerRound();
        break;
      case PreferenceKind.RATING:
        if (input.rating == null) throw badInput('RATING needs rating', 'rating');
        if (!input.rubricVersion) throw badInput('RATING needs rubricVersion', 'rubricVersion');
        // A rating of one answer (A = 0, B = 1) of a round; without answerIndex it rates the round or the whole candidate.
        if (input.answerIndex != null && input.roundIndex == null) throw badInput('roundIndex is required to rate an answer', 'roundIndex');
        if (input.answerIndex === 1) twoAnswerRound();
        break;
      case PreferenceKind.ACCEPTANCE:
        if (input.answerIndex == null || input.accepted == null) throw badInput('ACCEPTANCE needs answerIndex and accepted', 'answerIndex');
        if (input.roundIndex == null) throw badInput('roundIndex is required to judge an answer', 'roundIndex');
        if (input.answerIndex === 1) twoAnswerRound();
        break;
    }
  }

  /** The one-row INSERT of a model rating, for the runs kernel to wrap with the run's counters in one statement. */
  insertRating(ctx: RequestContext, values: Omit<Partial<Preference>, 'projectId' | 'source' | 'kind'>): InsertQueryBuilder<Preference> {
    return this.ds
      .createQueryBuilder()
      .insert()
      .into(Preference)
      .values({ ...values, projectId: ctx.projectId, source: PreferenceSource.MODEL, kind: PreferenceKind.RATING });
  }

  /**
   * Every preference of the project recorded before `before`, in the fields training pairs are built
   * from (training/preference-pairs.ts), in a stable order. The cut-off freezes a training run's
   * data: judgements recorded while it trains (or before a resumed attempt) do not change it.
   */
  async trainingRecords(ctx: RequestContext, before: Date): Promise<TrainingPreferenceRow[]> {
    const rows: Record<string, unknown>[] = await this.ds.query(
      `SELECT id, created_at, source, kind, candidate_id, annotator_id, judge_model, round_index, answer_index, other_candidate_id, choice, rating, accepted
       FROM preferences WHERE project_id = $1 AND created_at < $2 ORDER BY created_at, id`,
      [ctx.projectId, before],
    );
    return rows.map((r) => ({
      id: r.id as string,
      createdAt: r.created_at as Date,
      source: r.source as PreferenceSource,
      kind: r.kind as PreferenceKind,
      candidateId: r.candidate_id as string,
      annotatorId: (r.annotator_id as string | null) ?? null,
      judgeModel: (r.judge_model as string | null) ?? null,
      roundIndex: (r.round_index as number | null) ?? null,
      answerIndex: (r.answer_index as number | null) ?? null,
      otherCandidateId: (r.other_candidate_id as string | null) ?? null,
      choice: (r.choice as TrainingPreferenceRow['choice']) ?? null,
      rating: (r.rating as number | null) ?? null,
      accepted: (r.accepted as boolean | null) ?? null,
    }));
  }

  /** The answers a rating run already rated: what a resumed run skips. */
  async ratedByRun(ctx: RequestContext, runId: string): Promise<{ candidateId: string; roundIndex: number; answerIndex: number }[]> {
    const rows: { candidate_id: string; round_index: number; answer_index: number }[] = await this.ds.query(
      `SELECT candidate_id, round_index, answer_index FROM preferences WHERE project_id = $1 AND run_id = $2`,
      [ctx.projectId, runId],
    );
    return rows.map((r) => ({ candidateId: r.candidate_id, roundIndex: r.round_index, answerIndex: r.answer_index }));
  }
}
