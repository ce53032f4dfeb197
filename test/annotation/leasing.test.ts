/**
 * Issue 12: handing out work. nextAnnotationTask leases an item in one race-free statement: never
 * one the clinician submitted or skipped, never more than the overlap at once, never two leases of an
 * item to one person, the same lease again while it lasts, and the item back when a lease expires.
 * Many clinicians asking at once are checked against the database, not against the answers alone.
 */
import { createTestProject, startTestApp, TestApp, TestProject } from '../support/test-app';
import { errorCodes } from '../support/graphql-client';
import { acceptance, addClinicians, AnnotationApi, AnnotationFixture, Clinician, gid, seedAnnotationFixture } from './annotation-fixture';
import { fromGlobalId } from '../../src/platform/ids';

const uuid = (globalId: string) => fromGlobalId(globalId)!.id;

describe('annotation campaigns: leasing', () => {
  let app: TestApp;
  let lab: TestProject;
  let other: TestProject;
  let fx: AnnotationFixture;
  let api: AnnotationApi;
  let clinicians: Clinician[];

  /** A campaign over the first `n` two-answer candidates, in their order. */
  const campaignOf = (n: number, extra: Record<string, unknown> = {}) =>
    api.campaign(lab.keys.CURATOR, { name: `c${Math.random()}`, taskKind: 'ACCEPTANCE', routing: 'ORDERED', items: { candidateFilter: { runId: gid('Run', fx.runId) } }, ...extra }).then(async (id) => {
      // Keep only the first n items (the filter takes all): fewer items make the rules visible.
      await app.ds.query(`DELETE FROM annotation_items WHERE campaign_id = $1 AND ordinal >= $2`, [uuid(id), n]);
      return id;
    });
  const next = async (key: string, campaignId: string) => {
    const res = await api.next(key, campaignId);
    expect(res.errors).toBeUndefined();
    expect(res.data!.nextAnnotationTask.userErrors).toEqual([]);
    return res.data!.nextAnnotationTask.task as null | { leaseExpiresAt: string; item: { id: string; status: string }; candidate: { id: string } };
  };
  const submitAll = async (key: string, itemId: string) => {
    const res = await api.submit(key, { itemId, acceptance: acceptance() });
    expect(res.errors).toBeUndefined();
    expect(res.data!.submitAnnotation.userErrors).toEqual([]);
    return res.data!.submitAnnotation;
  };

  beforeAll(async () => {
    app = await startTestApp();
    lab = await createTestProject(app, 'camp-lease');
    other = await createTestProject(app, 'camp-lease-other');
    fx = await seedAnnotationFixture(app, lab, { twoAnswer: 10 });
    await seedAnnotationFixture(app, other, { twoAnswer: 1 });
    api = new AnnotationApi(app);
    clinicians = await addClinicians(app, lab, 12);
  });
  afterAll(async () => {
    await app?.stop();
  });

  it('returns the same lease while it lasts, hands out items in routing order, and null when nothing is left', async () => {
    const campaign = await campaignOf(2);
    const [a] = clinicians;
    const first = await next(a.key, campaign);
    expect(first).not.toBeNull();
    expect(first!.item.status).toBe('IN_PROGRESS');
    expect(first!.candidate.id).toBe(gid('Candidate', fx.twoAnswerIds[0]));
    const again = await next(a.key, campaign);
    expect(again).toEqual(first);
    await submitAll(a.key, first!.item.id);
    const second = await next(a.key, campaign);
    expect(second!.candidate.id).toBe(gid('Candidate', fx.twoAnswerIds[1]));
    await submitAll(a.key, second!.item.id);
    // Both items are done by this clinician (overlap 1): nothing is left for anyone.
    expect(await next(a.key, campaign)).toBeNull();
    expect(await next(clinicians[1].key, campaign)).toBeNull();
  });

  it('never gives one clinician an item twice, and gives each item to at most `overlap` clinicians at once', async () => {
    const campaign = await campaignOf(1, { overlap: 2 });
    const [a, b, c] = clinicians;
    const ta = await next(a.key, campaign);
    const tb = await next(b.key, campaign);
    expect(ta!.item.id).toBe(tb!.item.id);
    expect(await next(c.key, campaign)).toBeNull();
    await submitAll(a.key, ta!.item.id);
    // a submitted it; the item is not offered to a again, and c still finds it held by a (submitted) and b.
    expect(await next(a.key, campaign)).toBeNull();
    expect(await next(c.key, campaign)).toBeNull();
  });

  it('gives an item back when its lease expires: someone else can take it, and the late clinician cannot submit', async () => {
    const campaign = await campaignOf(1, { overlap: 1 });
    const [a, b] = clinicians;
    const ta = await next(a.key, campaign);
    expect(await next(b.key, campaign)).toBeNull();
    // Time passes: the lease ends (the clock is moved for the lease, not waited for).
    await app.ds.query(`UPDATE annotation_leases SET expires_at = now() - interval '1 second' WHERE item_id = $1`, [uuid(ta!.item.id)]);
    const status = await api.next(lab.keys.VIEWER, campaign);
    expect(errorCodes(status)).toEqual(['FORBIDDEN']);
    const tb = await next(b.key, campaign);
    expect(tb!.item.id).toBe(ta!.item.id);
    const late = await api.submit(a.key, { itemId: ta!.item.id, acceptance: acceptance() });
    expect(late.data!.submitAnnotation).toMatchObject({ submission: null, userErrors: [expect.objectContaining({ code: 'CONFLICT', field: ['input', 'itemId'] })] });
    await submitAll(b.key, tb!.item.id);
  });

  it('accepts a submission after the lease expired while nobody took the slot over', async () => {
    const campaign = await campaignOf(1);
    const [a] = clinicians;
    const ta = await next(a.key, campaign);
    await app.ds.query(`UPDATE annotation_leases SET expires_at = now() - interval '1 second' WHERE item_id = $1`, [uuid(ta!.item.id)]);
    const done = await submitAll(a.key, ta!.item.id);
    expect(done.item).toMatchObject({ status: 'COMPLETED', submittedCount: 1 });
  });

  it('skips: the slot is free for others and the item never comes back to the clinician who skipped it', async () => {
    const campaign = await campaignOf(2, { overlap: 1 });
    const [a, b] = clinicians;
    const first = await next(a.key, campaign);
    const skipped = await api.skip(a.key, first!.item.id);
    expect(skipped.data!.skipAnnotationTask).toEqual({ item: { id: first!.item.id, status: 'PENDING' }, userErrors: [] });
    const second = await next(a.key, campaign);
    expect(second!.item.id).not.toBe(first!.item.id);
    expect((await next(b.key, campaign))!.item.id).toBe(first!.item.id);
    // Skipping what one submitted, or an item one does not hold, is a CONFLICT.
    await submitAll(a.key, second!.item.id);
    expect((await api.skip(a.key, second!.item.id)).data!.skipAnnotationTask.userErrors).toEqual([expect.objectContaining({ code: 'CONFLICT' })]);
    expect((await api.skip(clinicians[2].key, first!.item.id)).data!.skipAnnotationTask.userErrors).toEqual([expect.objectContaining({ code: 'CONFLICT' })]);
    expect(await next(a.key, campaign)).toBeNull();
  });

  it('routes RANDOM in a stable order seeded by the campaign, and VALUE by priority', async () => {
    const orderOf = async (campaign: string) => {
      const seen: string[] = [];
      for (;;) {
        const task = await next(clinicians[3].key, campaign);
        if (!task) return seen;
        seen.push(task.candidate.id);
        await api.skip(clinicians[3].key, task.item.id);
      }
    };
    const random = await campaignOf(10, { routing: 'RANDOM' });
    const keys: { candidate_id: string }[] = await app.ds.query(`SELECT candidate_id FROM annotation_items WHERE campaign_id = $1 ORDER BY random_key, ordinal`, [uuid(random)]);
    const randomOrder = await orderOf(random);
    expect(randomOrder).toEqual(keys.map((k) => gid('Candidate', k.candidate_id)));
    expect(randomOrder).not.toEqual(fx.twoAnswerIds.map((id) => gid('Candidate', id)));

    const valued = await campaignOf(10, { routing: 'VALUE' });
    await app.ds.query(`UPDATE annotation_items SET priority = ordinal % 3 + ordinal / 100.0 WHERE campaign_id = $1`, [uuid(valued)]);
    await app.services.annotations.rerank(lab.ctx(), uuid(valued));
    const byPriority: { candidate_id: string }[] = await app.ds.query(`SELECT candidate_id FROM annotation_items WHERE campaign_id = $1 ORDER BY priority DESC`, [uuid(valued)]);
    expect(await orderOf(valued)).toEqual(byPriority.map((k) => gid('Candidate', k.candidate_id)));
  });

  it('CONCURRENCY: 12 clinicians x 3 parallel requests, then working in parallel, never exceed the overlap or double-lease', async () => {
    const campaign = await campaignOf(10, { overlap: 2 });
    const campaignId = uuid(campaign);
    // Every clinician asks three times at once, all 36 requests together.
    const answers = await Promise.all(clinicians.flatMap((c) => [0, 1, 2].map(() => next(c.key, campaign).then((task) => ({ c, task })))));
    for (const c of clinicians) {
      const mine = answers.filter((a) => a.c === c).map((a) => a.task?.item.id);
      expect(new Set(mine).size).toBe(1);
      expect(mine[0]).toBeDefined();
    }
    const held: { item_id: string; n: number }[] = await app.ds.query(
      `SELECT item_id, count(*)::int AS n FROM annotation_leases WHERE campaign_id = $1 AND state = 'LEASED' AND expires_at > now() GROUP BY item_id`,
      [campaignId],
    );
    expect(held.reduce((sum, h) => sum + h.n, 0)).toBe(12);
    expect(Math.max(...held.map((h) => h.n))).toBeLessThanOrEqual(2);

    // Then everyone works until nothing is left, all at once.
    await Promise.all(
      clinicians.map(async (c) => {
        for (let task = await next(c.key, campaign); task; task = await next(c.key, campaign)) await submitAll(c.key, task.item.id);
      }),
    );
    const perItem: { item_id: string; submitted: number; people: number }[] = await app.ds.query(
      `SELECT i.id AS item_id, count(s.id)::int AS submitted, count(DISTINCT s.annotator_id)::int AS people
         FROM annotation_items i LEFT JOIN annotation_submissions s ON s.item_id = i.id WHERE i.campaign_id = $1 GROUP BY i.id`,
      [campaignId],
    );
    expect(perItem).toHaveLength(10);
    for (const row of perItem) expect(row).toMatchObject({ submitted: 2, people: 2 });
    // The preferences agree: per item, two clinicians' rows, all linked to the campaign.
    const prefs: { candidate_id: string; people: number; n: number }[] = await app.ds.query(
      `SELECT candidate_id, count(DISTINCT annotator_id)::int AS people, count(*)::int AS n FROM preferences WHERE campaign_id = $1 GROUP BY candidate_id`,
      [campaignId],
    );
    expect(prefs).toHaveLength(10);
    for (const row of prefs) expect(row).toMatchObject({ people: 2, n: 8 });
    const counts = await api.next(clinicians[0].key, campaign);
    expect(counts.data!.nextAnnotationTask.task).toBeNull();
  });

  it('CONCURRENCY: one item, overlap 2, twelve clinicians at once: exactly two get it', async () => {
    const campaign = await campaignOf(1, { overlap: 2 });
    const tasks = await Promise.all(clinicians.map((c) => next(c.key, campaign)));
    expect(tasks.filter(Boolean)).toHaveLength(2);
    const [{ n }] = await app.ds.query(`SELECT count(DISTINCT annotator_id)::int AS n FROM annotation_leases WHERE campaign_id = $1 AND state = 'LEASED'`, [uuid(campaign)]);
    expect(n).toBe(2);
  });

  it('lets viewers annotate nothing, and curators annotate a campaign open to every clinician', async () => {
    const campaign = await campaignOf(2);
    const owned = await next(lab.keys.CURATOR, campaign);
    expect(owned).not.toBeNull();
    for (const res of [
      await api.next(lab.keys.VIEWER, campaign),
      await api.submit(lab.keys.VIEWER, { itemId: owned!.item.id, acceptance: acceptance() }),
      await api.skip(lab.keys.VIEWER, owned!.item.id),
    ]) {
      expect(errorCodes(res)).toEqual(['FORBIDDEN']);
    }
    await submitAll(lab.keys.CURATOR, owned!.item.id);
  });

  it('hands work only to the named annotators, and never to another project', async () => {
    const campaign = await campaignOf(1, { annotatorIds: [gid('User', clinicians[5].userId)] });
    expect(errorCodes(await api.next(clinicians[6].key, campaign))).toEqual(['FORBIDDEN']);
    expect(await next(clinicians[5].key, campaign)).not.toBeNull();
    const foreign = await api.next(other.keys.CLINICIAN, campaign);
    expect(foreign.data!.nextAnnotationTask).toEqual({ task: null, userErrors: [expect.objectContaining({ code: 'NOT_FOUND', field: ['input', 'campaignId'] })] });
    const item = (await app.ds.query(`SELECT id FROM annotation_items WHERE campaign_id = $1`, [uuid(campaign)]))[0].id;
    const foreignSubmit = await api.submit(other.keys.OWNER, { itemId: gid('AnnotationItem', item), acceptance: acceptance() });
    expect(foreignSubmit.data!.submitAnnotation.userErrors).toEqual([expect.objectContaining({ code: 'NOT_FOUND', field: ['input', 'itemId'] })]);
  });
});
