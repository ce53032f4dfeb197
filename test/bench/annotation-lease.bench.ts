/**
 * npm run bench:annotation-lease — what handing out clinician work costs on a large campaign.
 *
 * Seeds a project with BENCH_ITEMS two-answer candidates (default 10,000, the campaign maximum),
 * creates an ACCEPTANCE campaign with overlap 3 (30,000 lease slots), then BENCH_CLINICIANS
 * clinicians (default 12) work at once over real HTTP: nextAnnotationTask, then submitAnnotation
 * of the four answers, BENCH_TASKS times in all. Reference, measured in the same run and load:
 * recordPreference over HTTP, the plain one-row write a clinician made before campaigns, done four
 * times (what one submission writes). Prints latency percentiles and the ratios.
 */
import 'reflect-metadata';
import { benchDatabase } from './bench-database';
import { toGlobalId } from '../../src/platform/ids';
import { RequestContext } from '../../src/modules/projects/request-context';
import { Role } from '../../src/modules/projects/role';
import { AnnotationRouting, AnnotationTaskKind } from '../../src/modules/annotation/annotation-campaign.entity';
import { startTestApp, createTestProject } from '../support/test-app';
import { gql } from '../support/graphql-client';
import { acceptance, addClinicians, AnnotationApi } from '../annotation/annotation-fixture';

const ITEMS = Number(process.env.BENCH_ITEMS ?? 10_000);
const CLINICIANS = Number(process.env.BENCH_CLINICIANS ?? 12);
const TASKS = Number(process.env.BENCH_TASKS ?? 240);

const RECORD = `mutation($input: RecordPreferenceInput!) { recordPreference(input: $input) { preference { id } userErrors { code message } } }`;

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
};
const fmt = (values: number[]) => `p50 ${percentile(values, 50).toFixed(1)} ms, p95 ${percentile(values, 95).toFixed(1)} ms`;

async function timed<T>(into: number[], work: () => Promise<T>): Promise<T> {
  const started = process.hrtime.bigint();
  const result = await work();
  into.push(Number(process.hrtime.bigint() - started) / 1e6);
  return result;
}

async function main(): Promise<void> {
  const stopDatabase = await benchDatabase();
  const app = await startTestApp({ RATE_LIMIT_PER_MINUTE: '0' });
  try {
    const lab = await createTestProject(app, 'bench-annotation');
    const seedStarted = Date.now();
    await app.ds.query(
      `WITH imgs AS (INSERT INTO images (project_id, source, caption) SELECT $1, 'IMPORT', 'Figure ' || g FROM generate_series(1, $2) g RETURNING id)
       INSERT INTO candidates (project_id, image_id, status, form, rounds)
       SELECT $1, id, 'OK', 'TWO_ANSWERS', '[{"question":"q0","answers":["a","b"]},{"question":"q1","answers":["c","d"]}]'::jsonb FROM imgs`,
      [lab.id, ITEMS],
    );
    const clinicians = await addClinicians(app, lab, CLINICIANS);
    console.log(`seeded ${ITEMS} candidates and ${CLINICIANS} clinicians in ${Date.now() - seedStarted} ms`);

    const curator = new RequestContext(lab.id, lab.userIds.CURATOR, Role.CURATOR, null);
    const createStarted = Date.now();
    const campaign = await app.services.annotations.createCampaign(curator, {
      name: 'bench',
      taskKind: AnnotationTaskKind.ACCEPTANCE,
      items: { candidateFilter: { statuses: [] } },
      overlap: 3,
      leaseSeconds: 900,
      blind: true,
      routing: AnnotationRouting.RANDOM,
    });
    console.log(`createAnnotationCampaign: ${ITEMS} items, ${ITEMS * 3} slots in ${Date.now() - createStarted} ms`);

    const api = new AnnotationApi(app);
    const campaignId = toGlobalId('AnnotationCampaign', campaign.id);

    // One clinician alone: the lease statement's own cost on the full campaign, without queueing.
    const aloneMs: number[] = [];
    const aloneRefMs: number[] = [];
    const [solo] = await addClinicians(app, lab, 1, 'solo');
    const soloCandidates: { id: string }[] = await app.ds.query(`SELECT id FROM candidates WHERE project_id = $1 ORDER BY id DESC LIMIT 20`, [lab.id]);
    for (const { id } of soloCandidates) {
      const res = await timed(aloneMs, () => api.next(solo.key, campaignId));
      await api.submit(solo.key, { itemId: res.data!.nextAnnotationTask.task.item.id, acceptance: acceptance() });
      await timed(aloneRefMs, () => gql(app.graphqlUrl, solo.key, RECORD, { input: { candidateId: toGlobalId('Candidate', id), kind: 'ACCEPTANCE', roundIndex: 0, answerIndex: 0, accepted: true } }));
    }
    console.log(`one clinician alone: nextAnnotationTask ${fmt(aloneMs)}; reference, one recordPreference: ${fmt(aloneRefMs)}`);
    const nextMs: number[] = [];
    const submitMs: number[] = [];
    let left = TASKS;
    const workStarted = Date.now();
    await Promise.all(
      clinicians.map(async (c) => {
        while (left-- > 0) {
          const res = await timed(nextMs, () => api.next(c.key, campaignId));
          const task = res.data?.nextAnnotationTask.task;
          if (!task) throw new Error(`no task: ${JSON.stringify(res)}`);
          const done = await timed(submitMs, () => api.submit(c.key, { itemId: task.item.id, acceptance: acceptance() }));
          if (done.data?.submitAnnotation.userErrors.length !== 0) throw new Error(`submit failed: ${JSON.stringify(done)}`);
        }
      }),
    );
    const workSeconds = (Date.now() - workStarted) / 1000;

    // Reference: the same clinicians, the same concurrency, four recordPreference calls per "task".
    const candidateIds: { id: string }[] = await app.ds.query(`SELECT id FROM candidates WHERE project_id = $1 LIMIT $2`, [lab.id, TASKS]);
    const recordMs: number[] = [];
    let next = 0;
    await Promise.all(
      clinicians.map(async (c) => {
        while (next < candidateIds.length) {
          const candidateId = toGlobalId('Candidate', candidateIds[next++].id);
          await timed(recordMs, async () => {
            for (const a of acceptance()) await gql(app.graphqlUrl, c.key, RECORD, { input: { candidateId, kind: 'ACCEPTANCE', ...a } });
          });
        }
      }),
    );

    const [{ over }] = await app.ds.query(
      `SELECT count(*)::int AS over FROM (SELECT item_id FROM annotation_leases WHERE campaign_id = $1 AND (state = 'SUBMITTED' OR (state = 'LEASED' AND expires_at > now())) GROUP BY item_id HAVING count(*) > 3) t`,
      [campaign.id],
    );
    console.log(`\n${TASKS} tasks by ${CLINICIANS} clinicians at once in ${workSeconds.toFixed(1)} s (${(TASKS / workSeconds).toFixed(1)} tasks/s); items over the overlap: ${over}`);
    console.log(`nextAnnotationTask            ${fmt(nextMs)}`);
    console.log(`submitAnnotation (4 answers)  ${fmt(submitMs)}`);
    console.log(`reference: 4 x recordPreference, same clinicians and concurrency: ${fmt(recordMs)}`);
    console.log(`ratio next+submit / reference at p50: ${((percentile(nextMs, 50) + percentile(submitMs, 50)) / percentile(recordMs, 50)).toFixed(2)}`);
  } finally {
    await app.stop();
    await stopDatabase();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
