/**
 * A scoring run's progress reaches a real graphql-ws client: the current state, throttled updates
 * with throughput and ETA, and the final state, after which the server completes the subscription.
 * A second project's key is refused at connection_init when the client names the project, and
 * gets NOT_FOUND for the run otherwise.
 */
import { createTestProject, startTestApp, TestApp, TestProject } from '../support/test-app';
import { gql } from '../support/graphql-client';
import { seedPipeline } from '../support/pipeline-fixture';
import { wsClient } from '../support/ws-client';
import { referenceSelectorUpload, registerSelector, seedCandidates, START_SCORING } from '../support/scoring-fixture';
import { toGlobalId } from '../../src/platform/ids';

jest.setTimeout(60_000);

const PER_IMAGE = 60;
const BATCH = 3;
const RUN_UPDATED = `subscription($id: ID!) { runUpdated(id: $id) { id kind status total done failed itemsPerSecond etaSeconds } }`;

interface Outcome {
  events: any[];
  arrivals: number[];
  end: { outcome: 'complete' | 'error'; error?: any };
}

function follow(key: string, runId: string, connectionParams: Record<string, unknown> = {}): Promise<Outcome> {
  const client = wsClient(app, key, connectionParams);
  const events: any[] = [];
  const arrivals: number[] = [];
  return new Promise<Outcome>((resolve) => {
    const timer = setTimeout(() => resolve({ events, arrivals, end: { outcome: 'error', error: new Error('subscription did not end within 30 s') } }), 30_000);
    const done = (end: Outcome['end']) => {
      clearTimeout(timer);
      void client.dispose();
      resolve({ events, arrivals, end });
    };
    client.subscribe(
      { query: RUN_UPDATED, variables: { id: runId } },
      {
        next: (result: any) => {
          arrivals.push(Date.now());
          events.push(result.data?.runUpdated ?? { errors: result.errors });
        },
        error: (error) => done({ outcome: 'error', error }),
        complete: () => done({ outcome: 'complete' }),
      },
    );
  });
}

let app: TestApp;

describe('scoring progress over graphql-ws', () => {
  let lab: TestProject;
  let other: TestProject;
  let total: number;

  beforeAll(async () => {
    // No worker yet: the run stays QUEUED until the subscriber is listening.
    app = await startTestApp({ SCORING_BATCH_SIZE: String(BATCH), RUN_PROGRESS_INTERVAL_MS: '100' });
    lab = await createTestProject(app, 'scoring-ws');
    other = await createTestProject(app, 'scoring-ws-other');
    const { imageIds } = await seedPipeline(app, lab, { demonstrations: false });
    total = (await seedCandidates(app, lab, imageIds, PER_IMAGE)).length;
    const registered = await registerSelector(app, lab.keys.CURATOR, 'reference', referenceSelectorUpload(), { activate: true });
    expect(registered.data!.registerSelectorModel.userErrors).toEqual([]);
  });

  afterAll(async () => {
    await app?.stop();
  });

  it('pushes the initial state, throttled progress with throughput and ETA, and the final state, then completes', async () => {
    const started = await gql(app.graphqlUrl, lab.keys.CURATOR, START_SCORING, { input: {} });
    const runId = started.data!.startScoringRun.run.id;
    const following = follow(lab.keys.VIEWER, runId, { projectId: toGlobalId('Project', lab.id) });
    const refusedAtInit = follow(other.keys.VIEWER, runId, { projectId: toGlobalId('Project', lab.id) });
    const notFound = follow(other.keys.VIEWER, runId);
    await new Promise((r) => setTimeout(r, 300));
    await app.startWorker();

    const { events, arrivals, end } = await following;
    expect(end.outcome).toBe('complete');
    expect(events[0]).toMatchObject({ id: runId, kind: 'SCORING', status: 'QUEUED', done: 0, total });
    expect(events.at(-1)).toMatchObject({ status: 'SUCCEEDED', done: total, failed: 0, etaSeconds: null });
    expect(events.at(-1).itemsPerSecond).toBeGreaterThan(0);

    const progress = events.filter((e) => e.status === 'RUNNING' && e.done > 0 && e.done < total);
    expect(progress.length).toBeGreaterThan(0);
    for (const e of progress) expect(e.etaSeconds).toBeGreaterThanOrEqual(0);
    const done = events.map((e) => e.done);
    expect(done).toEqual([...done].sort((a, b) => a - b));
    // About 10 a second: over the run's life, no more than one event per 100 ms plus the first, the running and the final one.
    const lifetimeMs = arrivals.at(-1)! - arrivals[0];
    expect(events.length).toBeLessThanOrEqual(Math.ceil(lifetimeMs / 100) + 3);
    expect(events.length).toBeLessThan(total / BATCH);

    const refused = await refusedAtInit;
    expect(refused.end.outcome).toBe('error');
    expect(refused.end.error?.code).toBe(4403);
    expect(refused.events).toHaveLength(0);

    const hidden = await notFound;
    expect(hidden.events.flatMap((e) => e.errors ?? []).concat(Array.isArray(hidden.end.error) ? hidden.end.error : []).map((e: any) => e.extensions?.code)).toContain('NOT_FOUND');
    expect(hidden.events.filter((e) => e.id)).toHaveLength(0);
  });

  it('lets the project name itself at connection_init and still serves its own key', async () => {
    const [{ id }] = await app.ds.query(`SELECT id FROM runs WHERE project_id = $1 AND kind = 'SCORING' LIMIT 1`, [lab.id]);
    const late = await follow(lab.keys.VIEWER, toGlobalId('Run', id), { projectId: toGlobalId('Project', lab.id) });
    expect(late.end.outcome).toBe('complete');
    expect(late.events).toEqual([expect.objectContaining({ status: 'SUCCEEDED', done: total })]);
    const malformed = await follow(lab.keys.VIEWER, toGlobalId('Run', id), { projectId: 'not-a-project' });
    expect(malformed.end.error?.code).toBe(4403);
  });
});
